"""Every refusal is a 4xx naming the field and the problem; errors carry the security headers; pages are not cached.

Before: ``offset=10**20`` answered 500 on the list routes; a JSON body to ``POST /studies`` got "study_date must be
YYYY-MM-DD"; a missing ``patient_id`` got 404 "patient not found"; deeply nested JSON got a bare 400; a zip with a
bad CRC got 500 on the predict route; ``format=evil`` got 404; 500 answers lacked the security headers and HTML
pages lacked ``Cache-Control: no-store``.
"""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.service.conftest import World
from tests.utils import factories as f
from vitalens.service.middleware import SECURITY_HEADERS
from vitalens.service.ops import MAX_OFFSET

SRC = Path(__file__).resolve().parents[2] / "src" / "vitalens"


def _bad_crc_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("rec.hea", "rec 12 100 1000\n" + "".join(f"rec.dat 16 1000 16 0 0 0 0 L{i}\n" for i in range(12)))
        zf.writestr("rec.dat", bytes(24_000))
    data = bytearray(buf.getvalue())
    at = data.find(bytes(64))  # inside rec.dat's stored bytes
    data[at] = 1
    return bytes(data)


@pytest.mark.parametrize(
    ("path", "field"),
    [("/api/v1/patients", "offset"), ("/api/v1/studies", "offset"), ("/api/v1/audit-events", "offset")],
)
def test_huge_offsets_are_a_422_and_the_largest_an_empty_page(
    client: TestClient, world: World, path: str, field: str
) -> None:
    h = world.a.headers["admin"]
    huge = client.get(path, params={"offset": 10**20}, headers=h)
    assert huge.status_code == 422, huge.text
    assert huge.json()["detail"] == f"{field}: input should be less than or equal to {MAX_OFFSET}"
    last = client.get(path, params={"offset": MAX_OFFSET}, headers=h)
    assert last.status_code == 200 and last.json()["items"] == [] and last.json()["offset"] == MAX_OFFSET


def test_study_form_answers_name_the_field(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    as_json = client.post(
        "/api/v1/studies", json={"patient_id": world.a.patient.id, "study_date": "2024-01-01"}, headers=h
    )
    assert as_json.status_code == 415
    assert as_json.json()["detail"].startswith("body: POST /api/v1/studies takes multipart/form-data")
    assert as_json.json()["detail"].endswith("got application/json")
    missing = client.post("/api/v1/studies", data={"study_date": "2024-01-01"}, headers=h)
    assert (missing.status_code, missing.json()["detail"]) == (422, "patient_id: field required")
    bad_date = client.post(
        "/api/v1/studies", data={"patient_id": world.a.patient.id, "study_date": "1/2/24"}, headers=h
    )
    assert (bad_date.status_code, bad_date.json()["detail"]) == (
        422,
        "study_date: '1/2/24' is not a date; use YYYY-MM-DD",
    )
    text_as_file = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-01-01", "fundus_left": "not a file"},
        headers=h,
    )
    assert text_as_file.status_code == 422
    assert text_as_file.json()["detail"] == "fundus_left: must be a file upload (multipart file part), got a text value"
    file_as_id = client.post(
        "/api/v1/studies",
        data={"study_date": "2024-01-01"},
        files={"patient_id": ("x.png", f.png_bytes(seed=1), "image/png")},
        headers=h,
    )
    assert (file_as_id.status_code, file_as_id.json()["detail"]) == (
        422,
        "patient_id: must be a text field, not a file",
    )


def test_bad_crc_zip_is_a_422_on_the_study_route(client: TestClient, world: World) -> None:
    resp = client.post(
        "/api/v1/studies",
        data={"patient_id": world.a.patient.id, "study_date": "2024-01-01"},
        files={"ecg": ("rec.zip", _bad_crc_zip(), "application/zip")},
        headers=world.a.headers["clinician"],
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"].startswith("ecg: ECG .zip member 'rec.dat' is damaged: Bad CRC-32")


def test_predict_ecg_bad_zip_and_unknown_format_are_422(client: TestClient, world: World) -> None:
    h = world.a.headers["clinician"]
    crc = client.post("/api/v1/predict/ecg", files={"file": ("rec.zip", _bad_crc_zip(), "application/zip")}, headers=h)
    assert crc.status_code == 422, crc.text
    assert crc.json()["field"] == "ecg" and "Bad CRC-32" in crc.json()["detail"]
    evil = client.post(
        "/api/v1/predict/ecg",
        files={"file": ("ecg.csv", b"I,II\n1,2\n", "text/csv")},
        data={"format": "evil"},
        headers=h,
    )
    assert evil.status_code == 422 and evil.json()["field"] == "format"
    assert evil.json()["detail"].startswith("format: Unknown ECG format 'evil'.")


def test_deeply_nested_json_names_the_body(client: TestClient, world: World) -> None:
    body = "[" * 100_000 + "]" * 100_000
    resp = client.post(
        "/api/v1/patients", content=body, headers={**world.a.headers["clinician"], "content-type": "application/json"}
    )
    assert (resp.status_code, resp.json()["detail"]) == (422, "body: JSON nested too deeply")
    broken = client.post(
        "/api/v1/patients", content="{bad", headers={**world.a.headers["clinician"], "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert (
        broken.json()["detail"]
        == "body: invalid JSON at character 1 (expecting property name enclosed in double quotes)"
    )


def test_a_500_carries_the_security_headers_and_no_traceback(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("secret internal detail /srv/vitalens/var")

    app.add_api_route("/api/v1/test-boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/api/v1/test-boom")
    assert resp.status_code == 500
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert resp.headers["cache-control"] == "no-store" and "content-security-policy" in resp.headers
    body = resp.json()
    assert body["detail"] == f"internal server error; quote request id {resp.headers['x-request-id']}"
    assert "secret internal detail" not in resp.text and "Traceback" not in resp.text


def test_pages_are_never_cached_but_static_files_may_be(client: TestClient, world: World) -> None:
    assert client.get("/login").headers["cache-control"] == "no-store"
    page = client.get("/worklist", headers=world.a.headers["clinician"])
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/css/app.css").headers.get("cache-control", "")


def test_no_validation_by_assert_in_the_package() -> None:
    """``assert`` vanishes under ``python -O``: the package must check with explicit exceptions."""
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def test_stow_refuses_a_path_that_is_no_dicom_uid(client: TestClient, world: World) -> None:
    """Before: any text was taken as the Study Instance UID (an SQL-looking one answered about the content type)."""
    resp = client.post("/dicomweb/studies/1' OR '1'='1", content=b"", headers=world.a.headers["clinician"])
    assert resp.status_code == 422
    assert (
        resp.json()["detail"]
        == "study_uid: \"1' OR '1'='1\" is not a DICOM UID (digits and dots, at most 64 characters)"
    )
    huge = client.get("/dicomweb/studies", params={"offset": 10**20}, headers=world.a.headers["clinician"])
    assert huge.status_code == 422 and huge.json()["detail"].startswith("offset: input should be less than or equal")
