"""vitalens: explainable, multimodal medical screening (decision support, not a diagnosis)."""

from __future__ import annotations

__all__ = ["__version__", "DECISION_SUPPORT_NOTICE"]

__version__ = "0.1.0"

#: Every output of vitalens carries this sentence; the report, API, CLI and web app all read it from here.
DECISION_SUPPORT_NOTICE = (
    "Decision support only, not a diagnosis: findings must be reviewed and confirmed by a qualified clinician."
)
