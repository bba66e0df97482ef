"""Bad inputs found by ``bench/bad_inputs.py`` answer 422 naming the field, before any model is needed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vitalens.errors import InputError
from vitalens.io.ecg import ECGRecord
from vitalens.slots import EcgLimits


def _png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), 90, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_bad_input_is_named_even_where_no_model_is_installed(client: TestClient, clinician_headers) -> None:  # type: ignore[no-untyped-def]
    small = client.post(
        "/api/v1/predict/oct.c8", headers=clinician_headers, files={"oct": ("s.png", _png(64), "image/png")}
    )
    assert small.status_code == 422, small.text
    assert "64×64" in small.json()["detail"] and "128" in small.json()["detail"]
    ok_size = client.post(
        "/api/v1/predict/oct.c8", headers=clinician_headers, files={"oct": ("s.png", _png(256), "image/png")}
    )
    assert ok_size.status_code == 503 and "no bundled model" in ok_size.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/predict/oct.kermany4", "/api/v1/predict/ecg.ptbxl"])
def test_no_body_is_a_missing_field(client: TestClient, clinician_headers, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(path, headers=clinician_headers)
    assert answer.status_code == 422, answer.text
    assert "no body" in answer.json()["detail"]
    wrong_type = client.post(path, headers={**clinician_headers, "Content-Type": "application/json"}, content=b"{}")
    assert wrong_type.status_code == 415


def _record(signal: np.ndarray) -> ECGRecord:
    leads = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")[: signal.shape[0]]
    return ECGRecord(signal=signal.astype(np.float32), fs_hz=500.0, leads=leads)


def test_non_finite_ecg_samples_are_refused_naming_the_leads() -> None:
    signal = np.zeros((12, 5000))
    EcgLimits(min_duration_s=2.0).check(_record(signal), field="ecg")
    signal[1, 10:13] = np.nan
    signal[7, 0] = np.inf
    with pytest.raises(InputError, match=r"4 missing or non-finite samples .* lead\(s\) II, V2") as err:
        EcgLimits(min_duration_s=2.0).check(_record(signal), field="ecg")
    assert err.value.field == "ecg"
