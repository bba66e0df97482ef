"""Virtual fundus + OCT pairs by aligned labels: the retina fusion design's way of training without paired data.

Why "virtual": no public dataset holds a fundus photograph *and* an OCT scan of the same eye with labels. The
design pairs images from two datasets of different people by their labels — a normal fundus with a normal OCT, a
diseased fundus with a diseased OCT. A model trained and tested on such pairs learns to combine two independent
observations of the same label, which is easier than any real eye (whose two images are correlated, and may
disagree); its figures say nothing about real paired performance. Every card, API result and page that shows the
fusion says so.

The rule, exactly: within one split, every fundus image is paired once with an OCT image of the same binary label
(normal / disease), drawn uniformly with a seeded generator, without replacement until that label's OCT images are
used up, then again from the full set (so every OCT image of the label is used as evenly as possible). Splits are made
per modality first (each image in exactly one split), so no image appears in two splits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from vitalens.errors import InputError

__all__ = ["VirtualPair", "virtual_pairs", "FUNDUS_DISEASE_MIN_GRADE", "fundus_disease", "oct_disease"]

logger = logging.getLogger(__name__)

#: A fundus photograph is "disease" at ICDR grade ≥ 1 (any diabetic retinopathy); grade 0 is normal.
FUNDUS_DISEASE_MIN_GRADE = 1


def fundus_disease(grade: int) -> int:
    """1 for ICDR grade ≥ :data:`FUNDUS_DISEASE_MIN_GRADE`, else 0."""
    return int(int(grade) >= FUNDUS_DISEASE_MIN_GRADE)


def oct_disease(label: str) -> int:
    """1 for CNV, DME or DRUSEN, 0 for NORMAL (Kermany's classes)."""
    return int(str(label).upper() != "NORMAL")


@dataclass(frozen=True)
class VirtualPair:
    """One pair: row indices into the fundus and OCT samples of a split, and the shared binary label."""

    fundus: int
    oct: int
    label: int


def virtual_pairs(fundus_labels: np.ndarray, oct_labels: np.ndarray, *, seed: int = 0) -> list[VirtualPair]:
    """Pair every fundus image with an OCT image of the same binary label (see the module docstring).

    Args:
        fundus_labels: ``(N,)`` 0/1 labels of the split's fundus images.
        oct_labels: ``(M,)`` 0/1 labels of the split's OCT images.
        seed: generator seed.

    Returns:
        ``N`` pairs in fundus order.

    Raises:
        InputError: a label present among the fundus images has no OCT image.
    """
    f = np.asarray(fundus_labels).astype(int).ravel()
    o = np.asarray(oct_labels).astype(int).ravel()
    if not set(np.unique(f)) <= {0, 1} or not set(np.unique(o)) <= {0, 1}:
        raise InputError("virtual pairs need binary 0/1 labels", field="labels")
    rng = np.random.default_rng(seed)
    pools: dict[int, list[int]] = {}
    pairs: list[VirtualPair] = []
    for i, label in enumerate(f):
        candidates = np.flatnonzero(o == label)
        if candidates.size == 0:
            name = "disease" if label else "normal"
            raise InputError(f"no {name} OCT image to pair with the {name} fundus photographs", field="oct")
        pool = pools.get(int(label))
        if not pool:
            pool = rng.permutation(candidates).tolist()
            pools[int(label)] = pool
        pairs.append(VirtualPair(fundus=i, oct=int(pool.pop()), label=int(label)))
    return pairs
