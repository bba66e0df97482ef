"""Per-eye ODIR labels from the annotation sheet's diagnostic keywords.

Why: ODIR's eight labels are per *patient* (the union over both eyes), but the grader also wrote per-eye keywords
("moderate non proliferative retinopathy，hypertensive retinopathy"). Mapped to the same eight labels they give each
eye its own target, which a per-eye auxiliary head can learn from (the patient label stays the union of the eyes).

The mapping follows the ODIR-5K challenge's label definitions: the diabetic-retinopathy grades are D, both AMD forms
are A, "suspected" glaucoma/DR count as G/D, myopic maculopathy and pathological myopia are M; image-quality remarks
(lens dust, low image quality, no fundus image...) are no diagnosis and map to nothing; every other finding is O.
N is structural: an eye (a patient) is normal when it has no other label. On the 3,500-patient sheet the union of
the eyes reproduces every patient's eight labels (checked by ``tests/data/test_odir_keywords.py``).

Example:
    >>> eye_labels("moderate non proliferative retinopathy，hypertensive retinopathy")
    (0, 1, 0, 0, 0, 1, 0, 0)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from vitalens.data.odir import ODIR_LABELS, OdirRecord

__all__ = ["NOT_A_DIAGNOSIS", "keyword_label", "split_keywords", "eye_labels", "eye_targets", "patient_union"]

#: Keywords that describe the photograph, not the eye (ODIR's own list of non-diagnostic remarks).
NOT_A_DIAGNOSIS: tuple[str, ...] = (
    "lens dust",
    "low image quality",
    "image offset",
    "optic disk photographically invisible",
    "anterior segment image",
    "no fundus image",
)

#: (pattern, label), first match wins; matched against the lower-case keyword.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), label)
    for p, label in (
        (r"^normal fundus$", "N"),
        (r"non ?proliferative retinopathy|^proliferative (diabetic )?retinopathy|diabetic retinopathy", "D"),
        (r"glaucoma", "G"),
        (r"cataract", "C"),
        (r"age-related macular degeneration", "A"),
        (r"hypertensive retinopathy", "H"),
        (r"pathological myopia|myopic (maculopathy|retinopathy)|myopia retinopathy", "M"),
    )
)

_SEPARATORS = re.compile(r"[，,;；]")


def split_keywords(text: str) -> list[str]:
    """One sheet cell → its keywords, lower-case and stripped (the sheet separates them by an ASCII or
    full-width comma)."""
    return [k.strip().lower() for k in _SEPARATORS.split(text or "") if k.strip()]


def keyword_label(keyword: str) -> str | None:
    """The ODIR label of one keyword; ``None`` for an image-quality remark."""
    k = keyword.strip().lower()
    if k in NOT_A_DIAGNOSIS:
        return None
    for pattern, label in _RULES:
        if pattern.search(k):
            return label
    return "O"


def eye_labels(text: str) -> tuple[int, ...]:
    """Eight 0/1 values in :data:`ODIR_LABELS` order for one eye's keyword cell.

    N is set when no other label is (a grader's "normal fundus, lens dust" and a bare "low image quality" are N;
    "normal fundus, drusen" is O), as the sheet's patient labels do.
    """
    found = {lab for lab in (keyword_label(k) for k in split_keywords(text)) if lab not in (None, "N")}
    return tuple(int(label in found or (label == "N" and not found)) for label in ODIR_LABELS)


def patient_union(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    """The patient's labels from both eyes' labels: the union of the diagnoses; N when there is none."""
    n = ODIR_LABELS.index("N")
    union = [max(a, b) for a, b in zip(left, right, strict=True)]
    union[n] = int(sum(v for j, v in enumerate(union) if j != n) == 0)
    return tuple(union)


def eye_targets(records: Iterable[OdirRecord]) -> np.ndarray:
    """Per-eye targets of ODIR records, shape ``(N, 2, 8)`` float32: ``[:, 0]`` left eye, ``[:, 1]`` right eye."""
    rows = [(eye_labels(r.left_keywords), eye_labels(r.right_keywords)) for r in records]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2, len(ODIR_LABELS))
