"""Helpful look-ups by name (MONAI ``look_up_option`` style): unknown names list options and the closest one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from vitalens.errors import UnknownNameError

__all__ = ["unknown_name_error"]


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> UnknownNameError:
    """Build the error for an unknown ``name`` of ``kind``, naming every valid option and the closest match."""
    options = sorted(valid)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.4)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownNameError(f"Unknown {kind} '{name}'.{hint} Valid: {', '.join(options) or '(none)'}")
