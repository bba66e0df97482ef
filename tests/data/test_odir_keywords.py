"""Per-eye ODIR labels from the diagnostic keywords: exact mapping of each keyword family, N's structure, and the
union of the eyes reproducing the sheet's patient labels on the real annotation sheet."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_data_path
from vitalens.data.odir import ODIR_LABELS
from vitalens.data.odir_keywords import eye_labels, eye_targets, keyword_label, patient_union, split_keywords


def _vec(*labels: str) -> tuple[int, ...]:
    return tuple(int(lab in labels) for lab in ODIR_LABELS)


@pytest.mark.parametrize(
    ("keyword", "label"),
    [
        ("normal fundus", "N"),
        ("mild nonproliferative retinopathy", "D"),
        ("moderate non proliferative retinopathy", "D"),
        ("proliferative diabetic retinopathy", "D"),
        ("suspected diabetic retinopathy", "D"),
        ("suspected glaucoma", "G"),
        ("cataract", "C"),
        ("wet age-related macular degeneration", "A"),
        ("dry age-related macular degeneration", "A"),
        ("hypertensive retinopathy", "H"),
        ("pathological myopia", "M"),
        ("myopic maculopathy", "M"),
        ("drusen", "O"),
        ("epiretinal membrane", "O"),
        ("branch retinal vein occlusion", "O"),
        ("lens dust", None),
        ("Low Image Quality", None),
    ],
)
def test_keyword_label(keyword: str, label: str | None) -> None:
    assert keyword_label(keyword) == label


def test_split_on_ascii_and_full_width_commas() -> None:
    assert split_keywords("cataract，lens dust, drusen") == ["cataract", "lens dust", "drusen"]
    assert split_keywords("") == []


def test_eye_labels_and_n_means_no_other_label() -> None:
    assert eye_labels("moderate non proliferative retinopathy，hypertensive retinopathy") == _vec("D", "H")
    assert eye_labels("normal fundus，lens dust") == _vec("N")
    assert eye_labels("low image quality") == _vec("N")
    assert eye_labels("normal fundus，drusen") == _vec("O")


def test_patient_union() -> None:
    assert patient_union(_vec("N"), _vec("N")) == _vec("N")
    assert patient_union(_vec("N"), _vec("C")) == _vec("C")
    assert patient_union(_vec("D", "H"), _vec("O")) == _vec("D", "H", "O")


def test_union_of_the_eyes_is_the_patient_label_on_the_real_sheet() -> None:
    from vitalens.data.odir import find_odir_sheet, read_odir_sheet

    frame = read_odir_sheet(find_odir_sheet(shared_data_path("fundus", "odir")))
    union = np.asarray(
        [
            patient_union(eye_labels(left), eye_labels(right))
            for left, right in zip(frame["Left-Diagnostic Keywords"], frame["Right-Diagnostic Keywords"], strict=True)
        ]
    )
    truth = frame.loc[:, list(ODIR_LABELS)].to_numpy()
    assert len(frame) == 3500
    np.testing.assert_array_equal(union, truth)


def test_eye_targets_of_the_real_records_are_left_then_right() -> None:
    from vitalens.data.odir import OdirDataset

    ds = OdirDataset(shared_data_path("fundus", "odir"))
    eyes = eye_targets(ds.records)
    assert eyes.shape == (len(ds), 2, 8) and eyes.dtype == np.float32
    first = ds.records[0]
    assert tuple(eyes[0, 0].astype(int)) == eye_labels(first.left_keywords)
    assert tuple(eyes[0, 1].astype(int)) == eye_labels(first.right_keywords)
