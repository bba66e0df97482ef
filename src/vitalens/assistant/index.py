"""An embedded vector store (FAISS, exact inner product on unit MiniLM vectors) with the knowledge base built once
per process and a study's passages added for the question at hand.

Why FAISS: it installs from PyPI as one wheel, runs in-process without a server and works offline; a study has tens of
passages and the knowledge base a few dozen, so an exact flat index is both the simplest and the most accurate choice.
(sqlite-vec needs SQLite extension loading, which Python builds often leave out.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vitalens.assistant._types import Passage
from vitalens.assistant.knowledge import knowledge_passages, knowledge_version

__all__ = ["Hit", "VectorIndex", "knowledge_index", "retrieve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # cosine similarity in [-1, 1]


class VectorIndex:
    """Passages and their unit vectors in a FAISS ``IndexFlatIP``."""

    def __init__(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        import faiss

        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        self.passages = list(passages)
        self.dim = int(vectors.shape[1]) if len(vectors) else 384
        self._index = faiss.IndexFlatIP(self.dim)
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._lock = threading.Lock()

    @classmethod
    def build(cls, passages: Sequence[Passage]) -> VectorIndex:
        from vitalens.notes.embeddings import embed

        return cls(passages, embed([f"{p.title}. {p.text}" for p in passages]))

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, query: np.ndarray, k: int) -> list[Hit]:
        if not self.passages or k <= 0:
            return []
        with self._lock:
            scores, ids = self._index.search(
                np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, len(self))
            )
        return [Hit(self.passages[i], float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]


@lru_cache(maxsize=2)
def _knowledge_index(version: str) -> VectorIndex:
    index = VectorIndex.build(knowledge_passages())
    logger.info("knowledge index built: %d passages (version %s)", len(index), version)
    return index


def knowledge_index() -> VectorIndex:
    """The process's index of the bundled knowledge base (rebuilt when the knowledge base changes)."""
    return _knowledge_index(knowledge_version())


def retrieve(question: str, study: Sequence[Passage], *, k_study: int = 4, k_knowledge: int = 3) -> list[Hit]:
    """The study passages and the knowledge passages closest to ``question``, best first.

    Both kinds are searched separately and merged, so a question about "my patient's QTc" still gets the study's
    measurement *and* the reference range, and one kind never crowds the other out.
    """
    from vitalens.notes.embeddings import embed

    query = embed([question])[0]
    hits = VectorIndex.build(study).search(query, k_study) if study else []
    hits += knowledge_index().search(query, k_knowledge)
    return sorted(hits, key=lambda h: -h.score)
