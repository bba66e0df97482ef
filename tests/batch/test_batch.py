"""Batch screening on Ray Data (a local Ray): the same results as one-by-one analyses, resumable, with per-case
errors as rows; cases from a manifest or from a folder of DICOM studies sorted into slots by their tags."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitalens.batch import Case, cases_from_dir, cases_from_manifest, load_cases, run_batch
from vitalens.errors import InputError
from vitalens.synth.dicom import SynthDicomPatient, dicom_bytes, fundus_dataset
from vitalens.synth.odir import write_odir_synth

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "fundus-odir"

pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'vitalens[batch]')")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic ODIR twin and a manifest of its 6 patients (one with a corrupt right image)."""
    if not (MODEL / "card.json").is_file():
        pytest.skip("the bundled fundus-odir model is absent")
    root = write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=6, image_size=160, seed=3)
    sheet = pd.read_csv(root / "labels.csv")
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "fundus_left", "fundus_right", "age"])
        for i, row in enumerate(sheet.itertuples()):
            right = "images/broken.jpg" if i == 4 else f"images/{row._5}"
            writer.writerow([f"case-{i}", f"images/{row._4}", right, row._2])
    return root


def _one_by_one(case: Case) -> dict:
    """The reference: slot decoders and the analyzer called directly, no Ray."""
    from vitalens.analyzers import create_analyzer
    from vitalens.domain import StudyInputs
    from vitalens.slots import decode_slot, get_slot

    analyzer = create_analyzer("fundus.odir")
    values = {get_slot(s).attribute: decode_slot(s, Path(p).read_bytes()) for s, p in case.files.items()}
    values |= {get_slot(s).attribute: decode_slot(s, v) for s, v in case.values.items()}
    return analyzer(StudyInputs(**values), explain=False).model_dump(mode="json", exclude={"explanations"})


def test_batch_equals_one_by_one_and_resumes(archive: Path, tmp_path: Path, ray_local: None) -> None:
    cases = cases_from_manifest(archive / "manifest.csv", "fundus.odir")
    assert [c.case_id for c in cases] == [f"case-{i}" for i in range(6)]
    assert set(cases[0].files) == {"fundus_left", "fundus_right"} and cases[0].values["age"]
    out = tmp_path / "results.parquet"
    first = run_batch("fundus.odir", cases, out, chunk_size=2, concurrency=2, max_chunks=2)
    assert first.analysed == 4 and not out.exists(), "an interrupted run leaves parts, not a results file"
    seen: list[tuple[int, int]] = []
    second = run_batch(
        "fundus.odir", cases, out, chunk_size=2, concurrency=2, progress=lambda d, t: seen.append((d, t))
    )
    assert second.skipped == 4 and second.analysed == 2 and seen == [(6, 6)]
    table = pd.read_parquet(out)
    assert list(table["case_id"]) == [c.case_id for c in cases]
    assert list(table["status"]) == ["ok", "ok", "ok", "ok", "error", "ok"]
    assert "fundus_right" in table.loc[4, "error"] and second.failed == 1
    for case, row in zip(cases, table.to_dict("records"), strict=True):
        if row["status"] != "ok":
            continue
        reference = _one_by_one(case)
        batch = json.loads(row["result_json"])
        assert batch["findings"] == reference["findings"], "identical to the one-by-one path, to the last bit"
        assert batch["proxies"] == reference["proxies"] and batch["band"] == reference["band"]
        for f in reference["findings"]:
            assert row[f"p_{f['code']}"] == f["probability"] and row[f"positive_{f['code']}"] == f["positive"]
    third = run_batch("fundus.odir", cases, out, chunk_size=2)
    assert third.analysed == 0 and third.skipped == 6, "a finished run re-run does nothing"


def test_parts_of_another_model_are_not_mixed(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    parts = out.with_name("r.parquet.parts")
    parts.mkdir()
    (parts / "batch.json").write_text(json.dumps({"analyzer": "fundus.odir", "model": "other 9.9"}))
    cases = cases_from_manifest(archive / "manifest.csv", "fundus.odir")
    with pytest.raises(InputError, match="holds results of fundus.odir \\(other 9.9\\)"):
        run_batch("fundus.odir", cases, out)


def test_manifest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("case_id,fundus_left,left_eye\nc1,a.png,b.png\n")
    with pytest.raises(InputError, match=r"column\(s\) \['left_eye'\] are not slots of fundus.odir"):
        cases_from_manifest(bad, "fundus.odir")
    bad.write_text("name,fundus_left\nc1,a.png\n")
    with pytest.raises(InputError, match="no case_id column"):
        cases_from_manifest(bad, "fundus.odir")
    bad.write_text("case_id,age\nc1,50\nc1,51\n")
    with pytest.raises(InputError, match="'c1' appears twice"):
        cases_from_manifest(bad, "fundus.odir")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(InputError, match="neither a folder nor a .csv"):
        load_cases(tmp_path / "m.txt", "fundus.odir")


def test_folder_of_dicom_studies_is_sorted_into_slots_by_tags(tmp_path: Path) -> None:
    image = np.zeros((80, 80, 3), np.uint8)
    for n, pid in enumerate(("A", "B")):
        patient = SynthDicomPatient(patient_id=pid, birth_date=date(1950 + n, 1, 1), study_uid=f"1.2.3.{n + 1}")
        for eye in ("left", "right"):
            (tmp_path / f"{pid}-{eye}.dcm").write_bytes(dicom_bytes(fundus_dataset(image, eye=eye, patient=patient)))  # type: ignore[arg-type]
    cases = cases_from_dir(tmp_path, "fundus.odir")
    assert [c.case_id for c in cases] == ["1.2.3.1", "1.2.3.2"]
    assert Path(cases[0].files["fundus_left"]).name == "A-left.dcm"
    assert Path(cases[0].files["fundus_right"]).name == "A-right.dcm"
    assert cases[0].values == {"age": "74", "sex": "female"}  # born 1950-01-01, images of 2024-03-14
    (tmp_path / "note.txt").write_text("not an image")
    with pytest.raises(InputError, match="a folder of plain files cannot say which is which"):
        cases_from_dir(tmp_path, "fundus.odir")


@pytest.mark.slow
def test_cli_batch(archive: Path, tmp_path: Path, ray_local: None) -> None:
    from typer.testing import CliRunner

    from vitalens.cli import app

    out = tmp_path / "cli.parquet"
    result = CliRunner().invoke(
        app, ["batch", "fundus.odir", "--input", str(archive / "manifest.csv"), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["total"] == 6 and summary["failed"] == 1 and Path(summary["out"]) == out
    bad = CliRunner().invoke(app, ["batch", "fundus.odir", "--input", str(archive), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "--out must be a .parquet file" in bad.output
