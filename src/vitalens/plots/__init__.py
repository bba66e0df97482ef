"""Clinical plots rendered server-side to PNG (matplotlib Agg): the standard 12-lead ECG sheet."""

from __future__ import annotations

import logging

from vitalens.plots.ecg import ECG_LAYOUT, plot_12lead

__all__ = ["ECG_LAYOUT", "plot_12lead"]

logger = logging.getLogger(__name__)
