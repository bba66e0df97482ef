"""Virtual pairs by aligned labels: every fundus image paired once, labels always agree, OCT images used evenly,
seeded; the disease definitions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vitalens.data.virtual_pairs import fundus_disease, oct_disease, virtual_pairs
from vitalens.errors import InputError


def test_disease_definitions_exact() -> None:
    assert [fundus_disease(g) for g in range(5)] == [0, 1, 1, 1, 1]
    assert [oct_disease(c) for c in ("CNV", "DME", "DRUSEN", "NORMAL", "normal")] == [1, 1, 1, 0, 0]


def test_pairs_align_labels_and_use_oct_evenly() -> None:
    fundus = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    octs = np.array([0, 1, 0, 1, 1])  # 2 normal, 3 disease
    pairs = virtual_pairs(fundus, octs, seed=4)
    assert [p.fundus for p in pairs] == list(range(10))
    assert all(p.label == fundus[p.fundus] == octs[p.oct] for p in pairs)
    uses = Counter(p.oct for p in pairs)
    assert uses == {0: 2, 2: 2, 1: 2, 3: 2, 4: 2}  # 4 normals over 2 scans, 6 diseases over 3: each exactly twice
    assert virtual_pairs(fundus, octs, seed=4) == pairs
    assert virtual_pairs(fundus, octs, seed=5) != pairs


def test_a_label_without_oct_images_fails() -> None:
    with pytest.raises(InputError, match="no disease OCT image"):
        virtual_pairs(np.array([0, 1]), np.array([0, 0]))
    with pytest.raises(InputError, match="binary"):
        virtual_pairs(np.array([2]), np.array([0]))
