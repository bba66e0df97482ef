"""``export_feedback`` hands each analyzer's reviewed studies to its own dataset adapter's writer.

Before: the export was keyed by modality with an ODIR and a PTB-XL writer inside it, so an OCT correction was
dropped silently and a ``fundus.dr`` grade would have been mixed into the ODIR sheet; and the PTB-XL folder it
wrote failed in ``vitalens evaluate`` with ``invalid literal for int() with base 10: ''``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.service._analysis_fakes import jpeg_bytes
from tests.service.test_feedback_export import _ecg_csv
from tests.utils import factories as f
from vitalens._naming import UnknownNameError
from vitalens.data.aptos import AptosDataset
from vitalens.data.kermany import KermanyOctDataset
from vitalens.data.odir import ODIR_LABELS, OdirDataset
from vitalens.data.ptbxl_adapter import stable_fold
from vitalens.errors import InputError
from vitalens.service.ops.export import export_feedback, exportable_analyzers
from vitalens.service.ops.feedback import give_feedback
from vitalens.store import Analysis, Finding, Input, LocalBlobStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _input(db, blobs, study, slot: str, data: bytes, *, filename: str, media_type: str, modality: str, meta=None):
    db.add(
        Input(
            study_id=study.id,
            slot=slot,
            modality=modality,
            eye=slot.split("_")[1] if slot.startswith("fundus_") else None,
            filename=filename,
            content_sha256=hashlib.sha256(data).hexdigest(),
            media_type=media_type,
            size_bytes=len(data),
            blob_key=blobs.put(data),
            meta=meta or {},
        )
    )
    db.commit()


def _findings(
    db, study, analyzer: str, outputs: dict[tuple[str, str | None], bool]
) -> dict[tuple[str, str | None], str]:
    """A COMPLETE analysis with one finding per (code, input slot); returns (code, slot) → finding id."""
    analysis = Analysis(study_id=study.id, status="COMPLETE", analyzers=[analyzer], finished_at=datetime.now(UTC))
    db.add(analysis)
    db.flush()
    ids = {}
    for (code, slot), positive in outputs.items():
        row = Finding(
            analysis_id=analysis.id,
            analyzer=analyzer,
            code=code,
            label=code,
            probability=0.9 if positive else 0.1,
            threshold=0.5,
            positive=positive,
            input_name=slot,
        )
        db.add(row)
        db.flush()
        ids[(code, slot)] = row.id
    db.commit()
    return ids


def _grey(value: int, size: int = 96) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_every_analyzer_with_an_adapter_is_exportable() -> None:
    from vitalens.analyzers import get_spec, list_analyzers

    exportable = exportable_analyzers()
    assert exportable["fundus.odir"] == "odir" and exportable["ecg.ptbxl"] == "ptbxl"
    assert exportable["oct.kermany4"] == "kermany" and exportable["fundus.dr"] == "aptos2019"
    for name in list_analyzers():
        assert (name in exportable) == (get_spec(name).dataset is not None)


def test_oct_correction_is_exported_through_the_kermany_writer(db, world, blobs, tmp_path) -> None:
    site, clinician = world.a.site, world.a.users["clinician"]
    patient = f.create_patient(db, site=site, sex="female")
    study = f.create_study(db, patient=patient)
    _input(db, blobs, study, "oct", _grey(90), filename="scan.png", media_type="image/png", modality="oct")
    model = {("CNV", "oct"): True, ("DME", "oct"): False, ("DRUSEN", "oct"): False, ("NORMAL", "oct"): False}
    ids = _findings(db, study, "oct.kermany4", model)
    give_feedback(
        session=db,
        user=clinician,
        finding_id=ids[("CNV", "oct")],
        action="correct",
        corrected_label="DME",
        corrected_positive=True,
    )
    out = tmp_path / "export"
    summary = export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id)
    assert summary.by_analyzer == {"oct.kermany4": 1} and summary.by_dataset == {"kermany": 1}
    ds = KermanyOctDataset(out / "kermany")
    assert len(ds) == 1 and ds.labels[ds[0].label] == "DME"  # the clinician's class, not the model's CNV
    assert ds[0].split == "test"
    assert ds.image(0, "L").mean() == pytest.approx(90, abs=2)
    manifest = json.loads((out / "EXPORT.json").read_text())
    assert manifest["layouts"]["kermany"]["analyzers"] == ["oct.kermany4"]
    assert manifest["records"][0]["analyzer"] == "oct.kermany4" and manifest["records"][0]["study_id"] == study.id


def test_fundus_dr_grades_go_to_aptos_never_into_the_odir_sheet(db, world, blobs, tmp_path) -> None:
    site, clinician = world.a.site, world.a.users["clinician"]
    patient = f.create_patient(db, site=site, sex="male")
    study = f.create_study(db, patient=patient)
    study.age_years = 58.0
    db.commit()
    for side, value in (("left", 110), ("right", 150)):
        slot = f"fundus_{side}"
        _input(
            db,
            blobs,
            study,
            slot,
            jpeg_bytes(value),
            filename=f"{side}.jpg",
            media_type="image/jpeg",
            modality="fundus",
        )
    odir_model = {(c, None): c == "D" for c in ODIR_LABELS}
    for fid in _findings(db, study, "fundus.odir", odir_model).values():
        give_feedback(session=db, user=clinician, finding_id=fid, action="confirm")
    dr_model = {(g, s): g == "2" for g in ("0", "1", "2", "3", "4") for s in ("fundus_left", "fundus_right")}
    dr_model.update({("RDR", "fundus_left"): True, ("RDR", "fundus_right"): True})
    dr = _findings(db, study, "fundus.dr", dr_model)
    give_feedback(session=db, user=clinician, finding_id=dr[("2", "fundus_left")], action="confirm")
    give_feedback(
        session=db,
        user=clinician,
        finding_id=dr[("2", "fundus_right")],
        action="correct",
        corrected_label="4",
        corrected_positive=True,
    )
    out = tmp_path / "export"
    summary = export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id)
    assert summary.by_analyzer == {"fundus.dr": 1, "fundus.odir": 1}
    assert summary.by_dataset == {"aptos2019": 1, "odir": 1}
    odir = OdirDataset(out / "odir")
    assert len(odir) == 1 and odir[0].labels == tuple(int(c == "D") for c in ODIR_LABELS)
    header = (out / "odir" / "labels.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert not {"0", "1", "2", "3", "4", "RDR"} & set(header)
    aptos = AptosDataset(out / "aptos2019")
    grades = sorted(aptos.labels[s.label] for s in aptos)
    assert grades == ["2", "4"]  # left confirmed 2, right corrected 2 → 4; one image per eye

    only = export_feedback(
        session=db, blob_store=blobs, out=tmp_path / "only", site_id=site.id, analyzers=["fundus.dr"]
    )
    assert only.by_dataset == {"aptos2019": 1} and not (tmp_path / "only" / "odir").exists()


def test_analyzer_filter_refuses_unknown_and_adapterless_names(db, world, blobs, tmp_path) -> None:
    from vitalens.analyzers import get_spec

    with pytest.raises(UnknownNameError, match="fundus.odr"):
        export_feedback(session=db, blob_store=blobs, out=tmp_path / "a", analyzers=["fundus.odr"])
    with pytest.raises(InputError, match="ecg.intervals has nothing to export") as err:
        export_feedback(session=db, blob_store=blobs, out=tmp_path / "b", analyzers=["ecg.intervals"])
    assert get_spec("ecg.intervals").no_export_reason in str(err.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _patient_in_fold(db, site, fold: int):
    """A patient whose stable PTB-XL ``strat_fold`` is ``fold`` (ids are random: draw until one fits)."""
    for _ in range(500):
        pid = uuid.uuid4().hex
        if stable_fold(pid) == fold:
            return f.create_patient(db, site=site, id=pid, sex="female", year_of_birth=1950)
    raise AssertionError("no id found")


def test_exported_ptbxl_folder_is_evaluated_by_the_bundled_model(db, world, blobs, tmp_path) -> None:
    """``vitalens evaluate models/ecg-ptbxl --data EXPORT/ptbxl`` used to fail with ``int('')``."""
    from typer.testing import CliRunner

    from vitalens.cli import app

    artifact = REPO / "models" / "ecg-ptbxl"
    if not (artifact / "card.json").is_file():
        pytest.skip("bundled models/ecg-ptbxl absent")
    site, clinician = world.b.site, world.b.users["reviewer"]
    for fold, truth in ((10, "MI"), (10, "NORM"), (3, "NORM")):
        study = f.create_study(db, patient=_patient_in_fold(db, site, fold))
        study.age_years = 70.0
        db.commit()
        csv = _ecg_csv(500)
        _input(
            db,
            blobs,
            study,
            "ecg",
            csv,
            filename="ecg.csv",
            media_type="text/csv",
            modality="ecg",
            meta={"fs_hz": 500.0},
        )
        ids = _findings(db, study, "ecg.ptbxl", {(c, None): c == "NORM" for c in ("NORM", "MI", "STTC", "CD", "HYP")})
        for (code, _), fid in ids.items():
            if code in ("NORM", truth):
                give_feedback(
                    session=db, user=clinician, finding_id=fid, action="correct", corrected_positive=code == truth
                )
            else:
                give_feedback(session=db, user=clinician, finding_id=fid, action="confirm")
    out = tmp_path / "export"
    assert export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id).by_dataset == {"ptbxl": 3}
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(artifact), "--data", str(out / "ptbxl"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["splits"]["test"]["n"] == 2  # the fold-10 records
    assert report["splits"]["test"]["per_label"]["MI"]["n_positive"] == 1
    every = runner.invoke(app, ["evaluate", str(artifact), "--data", str(out / "ptbxl"), "--split", "all"])
    assert every.exit_code == 0, every.output
    assert "Scored 3 records" in every.output
    none = runner.invoke(app, ["evaluate", str(artifact), "--data", str(out / "ptbxl"), "--folds", "5"])
    assert none.exit_code == 2 and "invalid literal" not in none.output
    assert "no labelled PTB-XL record of strat_fold [5]" in none.output
