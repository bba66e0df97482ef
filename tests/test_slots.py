"""Input slots: limits per kind (exact edges), tightening by analyzers, decoding, and StudyInputs over slots."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vitalens.domain import StudyInputs
from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.slots import (
    SLOTS,
    CategoryLimits,
    EcgLimits,
    ImageLimits,
    NumberLimits,
    SlotKind,
    SlotSpec,
    TextLimits,
    decode_slot,
    get_slot,
)


def _img(h: int, w: int, c: int | None = 3) -> np.ndarray:
    return np.zeros((h, w, c) if c else (h, w), np.uint8)


def test_image_limits_edges() -> None:
    limits = ImageLimits(colour="rgb", min_side=64, max_side=4000, max_pixels=1_000_000, max_aspect=2.0)
    limits.check(_img(64, 128), field="x")  # both edges exactly met
    with pytest.raises(InputError, match=r"x: image is 128×63 px; the shorter side must be at least 64 px"):
        limits.check(_img(63, 128), field="x")
    with pytest.raises(InputError, match=r"aspect 2.0:1\); at most 2:1"):
        limits.check(_img(64, 129), field="x")
    with pytest.raises(InputError, match="a colour \\(RGB\\) image is required"):
        limits.check(_img(100, 100, None), field="x")
    with pytest.raises(InputError, match="1,000,001 px, above the 1,000,000-pixel limit"):
        ImageLimits(max_pixels=1_000_000).check(_img(1, 1_000_001), field="x")
    ImageLimits(colour="gray").check(_img(10, 10, None), field="x")


def test_the_two_upload_shapes_of_issue_9_are_refused_by_the_fundus_slot() -> None:
    spec = get_slot("fundus_left")
    with pytest.raises(InputError, match="shorter side must be at least 64"):
        spec.check(_img(20000, 63))
    with pytest.raises(InputError, match="aspect 312.5:1"):
        spec.check(_img(64, 20000))


class _Rec:
    def __init__(self, leads: list[str], fs: float, n: int) -> None:
        self.leads, self.fs_hz, self.signal = leads, fs, np.ones((len(leads), n), np.float32)


def test_ecg_limits_edges() -> None:
    limits = EcgLimits(fs_min_hz=50, fs_max_hz=10_000, min_duration_s=2.0, max_duration_s=60.0, min_leads=2)
    limits.check(_Rec(["I", "II"], 50, 100), field="ecg")  # 2 s at 50 Hz: every edge exactly met
    limits.check(_Rec(["I", "II"], 10_000, 600_000), field="ecg")
    with pytest.raises(InputError, match="ecg: ECG sampled at 1e\\+09 Hz; at most 10000 Hz is accepted"):
        limits.check(_Rec(["I", "II"], 1e9, 2_000_000_000 // 1000), field="ecg")
    with pytest.raises(InputError, match="at least 50 Hz"):
        limits.check(_Rec(["I", "II"], 49.9, 1000), field="ecg")
    with pytest.raises(InputError, match="ECG lasts 1.98 s"):
        limits.check(_Rec(["I", "II"], 50, 99), field="ecg")
    with pytest.raises(InputError, match="at most 60 s"):
        limits.check(_Rec(["I", "II"], 100, 6001), field="ecg")
    with pytest.raises(InputError, match="ECG has 1 lead\\(s\\) \\(II\\); at least 2 needed"):
        limits.check(_Rec(["II"], 100, 1000), field="ecg")
    with pytest.raises(InputError, match="not a positive number of Hz"):
        limits.check(_Rec(["I"], -250, 1000), field="ecg")


def test_required_leads_accept_derivable_limb_leads() -> None:
    from vitalens.io.ecg import ECGRecord

    two = ECGRecord(
        signal=np.random.default_rng(0).normal(0, 0.5, (2, 1000)).astype(np.float32), fs_hz=100.0, leads=["I", "II"]
    )
    EcgLimits(required_leads=("I", "II", "III", "aVF")).check(two, field="ecg")
    with pytest.raises(InputError, match="ECG lacks lead\\(s\\) V1"):
        EcgLimits(required_leads=("II", "V1")).check(two, field="ecg")


def test_number_category_text_limits() -> None:
    age = NumberLimits(minimum=0, maximum=120, unit="years")
    age.check(0.0, field="age")
    age.check(120, field="age")
    with pytest.raises(InputError, match="age: must be in 0–120 years, got 120.5"):
        age.check(120.5, field="age")
    with pytest.raises(InputError, match="finite number"):
        age.check(float("nan"), field="age")
    with pytest.raises(InputError, match="finite number"):
        age.check(True, field="age")
    with pytest.raises(InputError, match="must be one of female, male"):
        CategoryLimits(("female", "male")).check("x", field="sex")
    TextLimits(max_chars=3).check("abc", field="t")
    with pytest.raises(InputError, match="text has 4 characters; at most 3"):
        TextLimits(max_chars=3).check("abcd", field="t")


def test_tightening_takes_the_stricter_limit_of_each() -> None:
    a = ImageLimits(colour="gray", min_side=64, max_aspect=4.0)
    b = ImageLimits(colour="rgb", min_side=128, max_aspect=5.0, max_side=2000)
    assert a.tighten(b) == ImageLimits(colour="rgb", min_side=128, max_side=2000, max_aspect=4.0)
    e = EcgLimits(fs_min_hz=50, required_leads=("II",)).tighten(EcgLimits(fs_min_hz=100, required_leads=("I", "II")))
    assert e.fs_min_hz == 100 and e.required_leads == ("II", "I")
    with pytest.raises(ValueError, match="takes ImageLimits; an analyzer gave EcgLimits"):
        get_slot("oct").limits_with(EcgLimits())


def test_a_slot_needs_limits_of_its_kind_and_duplicates_are_errors() -> None:
    with pytest.raises(ValueError, match="needs TextLimits, got ImageLimits"):
        SlotSpec("t", SlotKind.TEXT, "T", ImageLimits())
    with pytest.raises(ValueError, match="input slot 'ecg' is already registered"):
        SLOTS.register("ecg", get_slot("ecg"))


def test_decode_slot_per_kind() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((70, 90, 3), 120, np.uint8)).save(buf, format="PNG")
    assert decode_slot("fundus_left", buf.getvalue()).shape == (70, 90, 3)
    assert decode_slot("oct", buf.getvalue()).shape == (70, 90)
    with pytest.raises(UnsupportedMediaError, match="ecg: an image was uploaded as an ECG"):
        decode_slot("ecg", buf.getvalue(), filename="x.png")
    assert decode_slot("age", " 61.5 ") == 61.5
    with pytest.raises(InputError, match="age: must be a number in 0–120 years, got 'sixty'"):
        decode_slot("age", "sixty")
    assert decode_slot("sex", "Female") == "female"
    csv = "I,II\n" + "\n".join(f"{np.sin(i / 5):.3f},{np.cos(i / 5):.3f}" for i in range(500))
    rec = decode_slot("ecg", csv.encode(), filename="e.csv", hints={"fs_hz": 250})
    assert rec.fs_hz == 250 and rec.signal.shape == (2, 500)


def test_study_inputs_are_generic_over_registered_slots() -> None:
    spec = SlotSpec("notes_test", SlotKind.TEXT, "Notes (test)", TextLimits(max_chars=100))
    with SLOTS.temporarily(spec.name, spec):
        inputs = StudyInputs(age_years=61, notes_test="no chest pain")
        assert inputs.get("notes_test") == "no chest pain" and inputs.notes_test == "no chest pain"  # type: ignore[attr-defined]
        assert inputs.present() == {"age", "notes_test"} and inputs.has("age") and inputs.get("age") == 61
    with pytest.raises(ValueError, match="Unknown input slot 'nots'"):
        StudyInputs(nots="x")
