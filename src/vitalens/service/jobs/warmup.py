"""Load the bundled models before the first analysis arrives (in the process that runs the jobs).

Why: models are loaded lazily on first use, so after a start the first analyses each waited for torch, timm and
the nets to be imported and loaded while they held the job pool: under ``bench/load.py`` the first two fundus
analyses took 50–53 s instead of 3–5 s, and every analysis queued behind them waited as long. Warming them in a
background thread at start-up moves that cost off the clinicians' path; the API answers meanwhile (an analysis
submitted during the warm-up waits for the model as before, never for the warm-up).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = ["warm_models", "start_warmup", "warmup_enabled"]

logger = logging.getLogger(__name__)


def warmup_enabled(settings: Any) -> bool:
    """``warm_models`` when set, else on except in the ``test`` environment (test apps start by the hundred)."""
    value = getattr(settings, "warm_models", None)
    return bool(value) if value is not None else getattr(settings, "environment", "dev") != "test"


def warm_models(registry: Any) -> dict[str, float]:
    """Load the model of every registered analyzer whose artifact is present; seconds per analyzer loaded.

    Analyzers without a model or without their artifact are skipped; a failure is logged and skipped (the
    analysis that needs the model reports it as before).
    """
    loaded: dict[str, float] = {}
    for name in registry.names():
        try:
            analyzer = registry.get(name)
            if analyzer.spec.default_artifact is None or not analyzer.availability().ready:
                continue
            t0 = time.perf_counter()
            analyzer.model()
            loaded[name] = time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - a model that does not load fails its analyses, not the start-up
            logger.exception("warm-up of %s failed", name)
    try:  # the explanation path's own imports (Grad-CAM, overlays)
        import pytorch_grad_cam  # noqa: F401

        import vitalens.explain.overlay  # noqa: F401
    except ImportError:
        logger.info("explanation modules not importable; skipped in the warm-up")
    logger.info("warmed %d model(s): %s", len(loaded), ", ".join(f"{k} {v:.1f} s" for k, v in loaded.items()))
    return loaded


def start_warmup(registry: Any) -> threading.Thread:
    """:func:`warm_models` on a daemon thread (returned, started)."""
    thread = threading.Thread(target=warm_models, args=(registry,), name="vitalens-warmup", daemon=True)
    thread.start()
    return thread
