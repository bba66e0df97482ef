"""``python -m vitalens``: the same command as ``vitalens``."""

from __future__ import annotations

from vitalens.cli import main

main()
