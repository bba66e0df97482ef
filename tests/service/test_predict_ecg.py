"""POST /api/v1/predict/ecg with a tiny artifact: WFDB zip and CSV uploads, and the 4xx answers."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.analyzers.test_ecg_ptbxl import PINNED, PINNED_POSITIVE, PINNED_TIER, PINNED_TIERS, make_tiny_ecg_artifact
from vitalens.config import Settings
from vitalens.io.ecg import STANDARD_LEADS, write_wfdb
from vitalens.service.app import create_app
from vitalens.synth.ptbxl import synth_ecg


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("predict_ecg")
    make_tiny_ecg_artifact(root / "models" / "ecg-ptbxl", probabilities=PINNED)
    settings = Settings(environment="test", data_dir=root / "var", models_dir=root / "models", public_predict=True)
    with TestClient(create_app(settings)) as c:
        yield c


def _wfdb_zip(tmp: Path) -> bytes:
    x = synth_ecg("MI", fs=100, seed=2)
    write_wfdb(tmp, "rec", x, 100, STANDARD_LEADS)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for suffix in (".hea", ".dat"):
            zf.write(tmp / f"rec{suffix}", f"rec{suffix}")
    return buf.getvalue()


def test_wfdb_zip(client: TestClient, tmp_path: Path) -> None:
    r = client.post(
        "/api/v1/predict/ecg",
        files={"file": ("rec.zip", _wfdb_zip(tmp_path), "application/zip")},
        data={"explain": "true"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classes"] == ["NORM", "MI", "STTC", "CD", "HYP"]
    assert set(body["probabilities"]) == set(body["classes"])
    assert body["probabilities"] == pytest.approx(PINNED, abs=0.01)
    assert (body["tier"], body["tiers"], body["positive"]) == (PINNED_TIER, PINNED_TIERS, PINNED_POSITIVE)
    assert body["decision_support_notice"].startswith("Decision support")
    assert body["demonstration"] is True and body["attribution"]
    (code, arrays), *_ = body["attribution_arrays"].items()
    assert np.asarray(arrays["per_lead"]).shape[0] == 12


def test_csv_with_rate(client: TestClient) -> None:
    x = synth_ecg("NORM", fs=100, seed=4)
    text = ",".join(STANDARD_LEADS) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in x.T)
    r = client.post(
        "/api/v1/predict/ecg", files={"file": ("ecg.csv", text.encode(), "text/csv")}, data={"fs_hz": "100"}
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["probabilities"]) == 5


def test_missing_leads_is_422(client: TestClient) -> None:
    x = synth_ecg("NORM", fs=100, seed=4)[6:]
    text = ",".join(STANDARD_LEADS[6:]) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in x.T)
    r = client.post(
        "/api/v1/predict/ecg", files={"file": ("ecg.csv", text.encode(), "text/csv")}, data={"fs_hz": "100"}
    )
    assert r.status_code == 422
    assert "ecg" in r.json()["detail"]


def test_ten_samples_are_refused_not_padded(client: TestClient) -> None:
    text = ",".join(STANDARD_LEADS) + "\n" + "\n".join(",".join(["0.1", "-0.2"] * 6) for _ in range(10))
    r = client.post(
        "/api/v1/predict/ecg", files={"file": ("ecg.csv", text.encode(), "text/csv")}, data={"fs_hz": "100"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "ecg: ECG lasts 0.1 s (10 samples at 100 Hz); at least 10 s is needed"


def test_impossible_rate_is_refused(client: TestClient) -> None:
    """The form's rate must be positive (a WFDB header's negative rate: tests/io/test_ecg_limits.py)."""
    r = client.post(
        "/api/v1/predict/ecg", files={"file": ("rec.csv", b"I,II\n1,2\n", "text/csv")}, data={"fs_hz": "-100"}
    )
    assert (r.status_code, r.json()["detail"]) == (422, "fs_hz: input should be greater than 0")


def test_not_an_ecg_is_rejected(client: TestClient) -> None:
    r = client.post("/api/v1/predict/ecg", files={"file": ("x.exe", b"MZ\x90\x00", "application/octet-stream")})
    assert r.status_code == 415 and r.json()["detail"].startswith("ecg: ECG upload 'x.exe' has suffix '.exe'")
