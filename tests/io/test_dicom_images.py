"""DICOM images in: fundus OP, OCT volumes, DX/CR radiographs, compressed or not, into the analyzers' arrays.

Files are made by the tests (``vitalens.synth.dicom`` over pydicom's encoders); display values of radiographs are
checked against DICOM's windowing formula computed by hand.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from vitalens.errors import InputError, UnsupportedMediaError
from vitalens.io.dicom import completed_years, is_dicom, patient_age_years, read_dicom_image
from vitalens.io.images import decode_image
from vitalens.synth.dicom import SynthDicomPatient, dicom_bytes, fundus_dataset, oct_dataset, radiograph_dataset

LOSSLESS = ["explicit", "implicit", "rle", "jpegls", "jpeg2000"]


@pytest.fixture(scope="module")
def fundus_rgb() -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([xx * 2 % 256, yy * 2 % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    noise = rng.integers(0, 8, size=img.shape, dtype=np.uint8)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("syntax", LOSSLESS)
def test_fundus_lossless_syntaxes_decode_exactly_with_eye_and_age(fundus_rgb: np.ndarray, syntax: str) -> None:
    data = dicom_bytes(fundus_dataset(fundus_rgb, eye="left", syntax=syntax))  # type: ignore[arg-type]
    img = read_dicom_image(data, field="fundus_left", colour="rgb", kind="fundus", eye="left")
    assert img.array.dtype == np.uint8 and img.array.shape == (96, 128, 3)
    np.testing.assert_array_equal(img.array, fundus_rgb)
    assert img.meta.kind == "fundus" and img.meta.modality == "OP"
    assert img.meta.laterality == "left" and img.meta.laterality_code == "L"
    # Born 1960-03-15, image made 2024-03-14: the 64th birthday is the next day.
    assert img.meta.age_years == 63.0
    assert img.patient.patient_id == "SYN-0001" and img.patient.issuer == "VITALENS-SYNTH"
    assert img.patient.birth_date == date(1960, 3, 15) and img.patient.sex == "female"


def test_fundus_jpeg_baseline_ybr_is_converted_to_rgb(fundus_rgb: np.ndarray) -> None:
    ds = fundus_dataset(fundus_rgb, eye="right", syntax="jpeg-baseline", series_level_laterality=True)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    img = read_dicom_image(dicom_bytes(ds), colour="rgb", kind="fundus", eye="right")
    error = np.abs(img.array.astype(int) - fundus_rgb.astype(int))
    assert error.mean() < 3.0, "JPEG at quality 95 decoded to RGB stays within a few grey levels"
    # Had the YBR planes been taken as RGB, the channels would be off by tens of levels.
    assert img.meta.laterality == "right" and img.meta.laterality_code == "R"


def test_patient_age_tag_wins_over_birth_date(fundus_rgb: np.ndarray) -> None:
    patient = SynthDicomPatient(age="070Y", birth_date=date(1960, 3, 15))
    img = read_dicom_image(dicom_bytes(fundus_dataset(fundus_rgb, eye=None, patient=patient)))
    assert img.meta.age_years == 70.0 and img.meta.laterality is None


def test_other_eye_than_the_slot_is_refused(fundus_rgb: np.ndarray) -> None:
    data = dicom_bytes(fundus_dataset(fundus_rgb, eye="right"))
    with pytest.raises(InputError, match=r"fundus_left: .*laterality is R \(right eye\) but it was sent as the left"):
        read_dicom_image(data, field="fundus_left", colour="rgb", kind="fundus", eye="left")


def test_oct_volume_middle_bscan_by_default_and_any_frame_on_request() -> None:
    volume = np.stack([np.full((70, 80), 10 + 40 * i, np.uint8) for i in range(5)])
    volume[:, 10:20, 10:20] = 250
    for syntax in ("explicit", "jpeg2000", "rle"):
        data = dicom_bytes(oct_dataset(volume, eye="right", syntax=syntax))  # type: ignore[arg-type]
        img = read_dicom_image(data, field="oct", colour="gray", kind="oct")
        np.testing.assert_array_equal(img.array, volume[2])
        assert img.meta.frame_index == 2 and img.meta.n_frames == 5 and img.meta.laterality == "right"
        np.testing.assert_array_equal(read_dicom_image(data, colour="gray", frame=4).array, volume[4])
    with pytest.raises(InputError, match="frame 5 requested; the object has 5 frame"):
        read_dicom_image(data, colour="gray", frame=5)


def test_an_oct_in_a_fundus_slot_is_refused_as_media_type() -> None:
    data = dicom_bytes(oct_dataset(np.zeros((3, 70, 80), np.uint8), eye="left"))
    with pytest.raises(UnsupportedMediaError, match="fundus_left: the DICOM object is a OCT B-scan .*needs a fundus"):
        decode_image(data, field="fundus_left", colour="rgb", kind="fundus")


# Stored values and DICOM's LINEAR window (PS3.3 C.11.2.1.2.1) with centre 1000, width 1001:
#   x <= 999.5 - 500 → 0;  x > 999.5 + 500 → 255;  else ((x - 999.5) / 1000 + 0.5) · 255, rounded.
#   400 → 0;  750 → 0.2505·255 = 63.88 → 64;  1000 → 0.5005·255 = 127.63 → 128;  1250 → 0.7505·255 = 191.38 → 191;
#   1600 → 255.   MONOCHROME1 inverts: 1 - 0.5005 = 0.4995 → 127.37 → 127, 1 - 0.2505 → 191, 1 - 0.7505 → 64.
STORED = np.array([400, 750, 1000, 1250, 1600], dtype=np.uint16)
WINDOWED = np.array([0, 64, 128, 191, 255], dtype=np.uint8)
WINDOWED_INVERTED = np.array([255, 191, 127, 64, 0], dtype=np.uint8)


def _radiograph(values: np.ndarray) -> np.ndarray:
    return np.tile(values, (70, 80 // len(values) + 1))[:, :80]


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpegls", "jpeg2000"])
@pytest.mark.parametrize("monochrome1", [False, True])
def test_radiograph_window_follows_dicom_formula(syntax: str, monochrome1: bool) -> None:
    ds = radiograph_dataset(_radiograph(STORED), window=(1000, 1001), monochrome1=monochrome1, syntax=syntax)  # type: ignore[arg-type]
    img = read_dicom_image(dicom_bytes(ds), field="cxr", colour="gray", kind="cxr")
    np.testing.assert_array_equal(img.array[0, :5], WINDOWED_INVERTED if monochrome1 else WINDOWED)
    assert img.meta.kind == "cxr" and img.meta.body_part == "CHEST" and img.meta.view_position == "PA"


def test_rescale_is_applied_before_the_window() -> None:
    # slope 2, intercept -100: stored 250, 425, 550, 675, 850 → 400, 750, 1000, 1250, 1600 as above.
    stored = ((STORED.astype(int) + 100) // 2).astype(np.uint16)
    ds = radiograph_dataset(_radiograph(stored), window=(1000, 1001), rescale=(2.0, -100.0), sop="cr")
    np.testing.assert_array_equal(read_dicom_image(dicom_bytes(ds), colour="gray").array[0, :5], WINDOWED)


def test_radiograph_without_window_uses_its_value_range() -> None:
    # 16-bit CR, no VOI: 100 → 0, 300 → 127.5 → 128 (round half to even), 500 → 255.
    ds = radiograph_dataset(_radiograph(np.array([100, 300, 500], np.uint16)), bits=16, sop="cr", window=None)
    np.testing.assert_array_equal(read_dicom_image(dicom_bytes(ds), colour="gray").array[0, :3], [0, 128, 255])


def test_any_policy_gives_rgb_and_rgb_policy_refuses_grayscale() -> None:
    data = dicom_bytes(radiograph_dataset(_radiograph(STORED), window=(1000, 1001)))
    rgb = read_dicom_image(data, colour="any").array
    assert rgb.shape == (70, 80, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    with pytest.raises(InputError, match="grayscale DICOM image .*colour \\(RGB\\) fundus"):
        read_dicom_image(data, field="fundus_left", colour="rgb")


def test_a_hand_radiograph_is_not_a_chest_radiograph() -> None:
    data = dicom_bytes(radiograph_dataset(_radiograph(STORED), body_part="HAND"))
    with pytest.raises(InputError, match="cxr: the radiograph's BodyPartExamined is HAND"):
        read_dicom_image(data, field="cxr", colour="gray", kind="cxr")


def test_limits_are_checked_from_the_header_before_decoding() -> None:
    ds = radiograph_dataset(_radiograph(STORED))
    ds.Rows, ds.Columns = 60_000, 60_000  # pixel data far too short: must be refused before it is decoded
    with pytest.raises(InputError, match="60000×60000 px × 1 frame\\(s\\) = 3,600,000,000 pixels, above"):
        read_dicom_image(dicom_bytes(ds), field="cxr", colour="gray")
    small = radiograph_dataset(np.zeros((40, 80), np.uint16))
    with pytest.raises(InputError, match="image is 80×40 px; the shorter side must be at least 64"):
        read_dicom_image(dicom_bytes(small), colour="gray")


def test_not_dicom_no_pixels_and_corrupt_pixels() -> None:
    with pytest.raises(UnsupportedMediaError, match="not a DICOM Part 10 file"):
        read_dicom_image(b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    ds = radiograph_dataset(_radiograph(STORED))
    del ds.PixelData
    with pytest.raises(UnsupportedMediaError, match="holds no image pixel data"):
        read_dicom_image(dicom_bytes(ds))
    truncated = radiograph_dataset(_radiograph(STORED), syntax="jpeg2000")
    truncated.PixelData = truncated.PixelData[: len(truncated.PixelData) // 3]
    with pytest.raises(InputError, match="corrupt or truncated DICOM pixel data|not a readable DICOM"):
        read_dicom_image(dicom_bytes(truncated), colour="gray")
    assert not is_dicom(b"DICM") and is_dicom(dicom_bytes(ds))


def test_decode_image_takes_dicom_like_any_image(fundus_rgb: np.ndarray) -> None:
    data = dicom_bytes(fundus_dataset(fundus_rgb, eye="left", syntax="jpeg2000"))
    np.testing.assert_array_equal(decode_image(data, field="fundus_left", colour="rgb", eye="left"), fundus_rgb)
    assert decode_image(data, colour="gray").shape == (96, 128)


@pytest.mark.parametrize(
    ("birth", "on", "years"),
    [
        (date(1960, 3, 15), date(2024, 3, 14), 63),
        (date(1960, 3, 15), date(2024, 3, 15), 64),
        (date(2000, 2, 29), date(2021, 2, 28), 20),  # a leap-day birthday comes on 1 March in common years
        (date(2000, 2, 29), date(2021, 3, 1), 21),
        (date(2000, 2, 29), date(2024, 2, 29), 24),
        (date(2024, 5, 1), date(2024, 5, 1), 0),
        (date(2024, 5, 2), date(2024, 5, 1), None),  # image before birth: no age
    ],
)
def test_completed_years(birth: date, on: date, years: int | None) -> None:
    assert completed_years(birth, on) == years


def test_age_falls_back_from_content_date_to_study_date() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientBirthDate = "19500610"
    ds.StudyDate = "20200609"
    assert patient_age_years(ds) == 69.0
    ds.ContentDate = "20200610"
    assert patient_age_years(ds) == 70.0
    ds.PatientAge = "006M"
    assert patient_age_years(ds) == 0.5
    assert patient_age_years(Dataset()) is None


def test_deidentify_keeps_uids_dates_eye_age_and_pixels_and_drops_identity(fundus_rgb: np.ndarray) -> None:
    import io

    import pydicom

    from vitalens.io.dicom import DEID_METHOD, deidentify_bytes

    ds = fundus_dataset(fundus_rgb, eye="right", syntax="rle")
    ds.PatientAddress = "1 Harbour Road"
    ds.OtherPatientIDs = "OLD-MRN-1"
    ds.add_new(0x00091010, "LO", "private vendor note")
    out = pydicom.dcmread(io.BytesIO(deidentify_bytes(dicom_bytes(ds), pseudonym="P-0042")))
    assert out.PatientID == "P-0042" and str(out.PatientName) == "P-0042"
    assert "PatientAddress" not in out or not out.PatientAddress
    assert "OtherPatientIDs" not in out or not out.OtherPatientIDs
    assert not str(out.get("PatientBirthDate", "")), "no dummy birth date (it would give a false age)"
    assert out.PatientAge == "063Y", "the age on the day is written from the birth date before it is removed"
    assert (0x0009, 0x1010) not in out
    assert out.SOPInstanceUID == ds.SOPInstanceUID and out.StudyInstanceUID == ds.StudyInstanceUID
    assert out.StudyDate == ds.StudyDate and out.ImageLaterality == "R" and out.PixelData == ds.PixelData
    assert out.PatientIdentityRemoved == "YES" and out.DeidentificationMethod == DEID_METHOD
