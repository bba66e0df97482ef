"""The clinician web app: server-rendered pages, small JavaScript modules and bundled synthetic sample cases.

Served by the API process (``vitalens.service.app`` includes :data:`router` and calls :func:`install`).
"""

from __future__ import annotations

import logging

from vitalens.web.routes import STATIC_DIR, TEMPLATES_DIR, install, router

__all__ = ["router", "install", "STATIC_DIR", "TEMPLATES_DIR"]

logger = logging.getLogger(__name__)
