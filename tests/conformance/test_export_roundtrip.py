"""The loop from review back to training, for every analyzer: feedback export → evaluate → train.

Parametrised over ``list_analyzers()``. For an analyzer whose contract names a dataset adapter and states no
``no_export_reason``: the adapter's synthetic twin becomes reviewed studies in the service's store (the truth
confirmed by a clinician), ``export_feedback(analyzers=[name])`` writes them through the adapter's writer, a tiny
model trained on a second twin scores the exported folder with ``vitalens evaluate`` (every record), and ``vitalens
train`` trains on the exported folder with a tiny ``--set`` budget. An analyzer that cannot round-trip states why
in its contract, and the test checks that statement: no adapter means the export refuses it; an adapter whose
writer needs what a review does not hold means the export writes nothing and says why.

The tiny budgets below are test configuration (which small net each task trains fast on a CPU), not code paths.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.service.conftest import settings  # noqa: F401 - the world fixture needs it
from tests.utils import factories as f
from vitalens.analyzers import get_spec, list_analyzers
from vitalens.cli import app
from vitalens.data import get_adapter
from vitalens.errors import InputError
from vitalens.service.ops.export import export_feedback
from vitalens.service.ops.feedback import give_feedback
from vitalens.store import Analysis, Finding, Input, LocalBlobStore

pytestmark = pytest.mark.integration

_IMAGE = ["--set", "net.name=image_classifier_test", "--set", "net.pretrained=false", "--set", "task.image_size=32"]
_EPOCH = ["--set", "train.max_epochs=1", "--set", "train.batch_size=8", "--set", "train.progress_bar=false"]
#: analyzer → ``--set`` options of a seconds-long training run (small nets, small images, one epoch).
TINY: dict[str, list[str]] = {
    "fundus.odir": [
        "--set",
        "net.name=odir_test",
        "--set",
        "net.pretrained=false",
        "--set",
        "task.image_size=64",
        "--set",
        "train.unfreeze_after=0",
        *_EPOCH,
    ],
    "ecg.ptbxl": ["--set", "net.name=ecg_se_resnet1d_test", "--set", "task.noisy_normals=0", *_EPOCH],
    "fundus.dr": [*_IMAGE, "--set", "train.unfreeze_after=0", *_EPOCH],
    "oct.kermany4": [*_IMAGE, "--set", "train.unfreeze_after=0", *_EPOCH],
    # OCT-C8's recipe reads the published split; the export files reviewed scans under test/ (external data).
    "oct.c8": [*_IMAGE, "--set", "train.unfreeze_after=0", "--set", "task.splits=patient", *_EPOCH],
    "cxr.anomaly": [
        "--set",
        "net.name=cxr_anomaly_test",
        "--set",
        "net.pretrained=false",
        "--set",
        "task.image_size=64",
        "--set",
        "task.augment_copies=1",
        "--set",
        "task.n_boot=100",
        "--set",
        "task.scorer.max_epochs=2",
        "--set",
        "task.scorer.batch_size=16",
        "--set",
        "train.max_epochs=2",
        "--set",
        "train.batch_size=16",
    ],
}

#: Records of each synthetic twin (enough for a patient-level train/val/test split of every class).
TWIN_SIZE = 40


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


# -- the twin's records as reviewed studies ------------------------------------------------------------------------
class Case:
    """One record of a twin as the service would hold it: inputs (slot → file), patient facts and the truth."""

    def __init__(
        self,
        files: dict[str, tuple[bytes, str, str, dict[str, Any]]],
        truth: dict[str | None, dict[str, bool]],
        sex: str = "female",
        age: float = 60.0,
    ) -> None:
        self.files, self.truth, self.sex, self.age = files, truth, sex, age


def _ecg_csv(signal_mv: np.ndarray, fs: float, leads: tuple[str, ...]) -> bytes:
    t = np.arange(signal_mv.shape[1]) / fs
    rows = ["time," + ",".join(leads)]
    rows += [f"{t[i]:.4f}," + ",".join(f"{v:.5f}" for v in signal_mv[:, i]) for i in range(signal_mv.shape[1])]
    return ("\n".join(rows) + "\n").encode()


def _cases(analyzer: str, root: Path) -> list[Case]:
    """The twin's records as cases, by the kind of object its adapter reads (published layouts differ)."""
    from vitalens.data._image_source import ImageClassSource
    from vitalens.data.covid_radiography import CovidRadiographyDataset
    from vitalens.data.odir import ODIR_LABELS, OdirDataset
    from vitalens.data.ptbxl import PTBXLDataset

    contract = get_spec(analyzer)
    ds = get_adapter(str(contract.dataset)).read(root)
    slot = contract.slots[0]
    if isinstance(ds, ImageClassSource):
        return [
            Case(
                {slot: (s.path.read_bytes(), s.path.name, "image/jpeg", {})},
                {slot: {code: j == s.label for j, code in enumerate(ds.labels)}},
            )
            for s in ds
            if s.path is not None
        ]
    if isinstance(ds, CovidRadiographyDataset):
        from vitalens.data.covid_radiography import CXR_CLASSES

        return [
            Case(
                {slot: (r.path.read_bytes(), r.path.name, "image/png", {})},
                {slot: {c: c == r.cls for c in CXR_CLASSES}},
            )
            for r in ds
        ]
    if isinstance(ds, OdirDataset):
        return [
            Case(
                {
                    "fundus_left": (r.left.read_bytes(), r.left.name, "image/jpeg", {}),
                    "fundus_right": (r.right.read_bytes(), r.right.name, "image/jpeg", {}),
                },
                {None: {c: bool(v) for c, v in zip(ODIR_LABELS, r.labels, strict=True)}},
                sex=r.sex,
                age=r.age_years,
            )
            for r in ds
        ]
    if isinstance(ds, PTBXLDataset):
        fs = float(ds.sampling_rate)
        return [
            Case(
                {"ecg": (_ecg_csv(ds.read_record(i), fs, ds.leads), "ecg.csv", "text/csv", {"fs_hz": fs})},
                {None: {c: bool(ds.targets[i, j]) for j, c in enumerate(ds.labels)}},
                sex=ds.sex[i] if ds.sex[i] != "unknown" else "female",
                age=float(ds.age_years[i]),
            )
            for i in range(len(ds))
        ]
    raise AssertionError(f"{analyzer}: no case builder for {type(ds).__name__}; add one for the new layout")


def _store(db, blobs, site, clinician, analyzer: str, case: Case) -> None:
    """The case as a study with a COMPLETE analysis whose findings the clinician confirms (truth as the output)."""
    patient = f.create_patient(db, site=site, sex=case.sex, year_of_birth=1960)
    study = f.create_study(db, patient=patient)
    study.age_years = case.age
    for slot, (data, name, media, meta) in case.files.items():
        db.add(
            Input(
                study_id=study.id,
                slot=slot,
                modality=str(get_spec(analyzer).modality),
                filename=name,
                content_sha256=hashlib.sha256(data).hexdigest(),
                media_type=media,
                size_bytes=len(data),
                blob_key=blobs.put(data),
                meta=meta,
            )
        )
    analysis = Analysis(study_id=study.id, status="COMPLETE", analyzers=[analyzer], finished_at=datetime.now(UTC))
    db.add(analysis)
    db.flush()
    rows = []
    for slot, labels in case.truth.items():
        for code, positive in labels.items():
            row = Finding(
                analysis_id=analysis.id,
                analyzer=analyzer,
                code=code,
                label=code,
                probability=0.8 if positive else 0.2,
                threshold=0.5,
                positive=positive,
                input_name=slot,
            )
            db.add(row)
            rows.append(row)
    db.commit()
    for row in rows:
        give_feedback(session=db, user=clinician, finding_id=row.id, action="confirm")


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# -- the test ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("analyzer", list_analyzers())
def test_export_evaluate_train_round_trip(analyzer: str, db, world, blobs, tmp_path: Path) -> None:
    contract = get_spec(analyzer)
    site, clinician = world.a.site, world.a.users["clinician"]
    if contract.dataset is None:
        assert contract.no_export_reason, f"{analyzer} names no dataset adapter and states no no_export_reason"
        with pytest.raises(InputError, match=f"{analyzer} has nothing to export"):
            export_feedback(session=db, blob_store=blobs, out=tmp_path / "x", site_id=site.id, analyzers=[analyzer])
        return
    if contract.no_export_reason:
        _check_stated_reason(analyzer, db, blobs, site, clinician, tmp_path)
        return
    assert analyzer in TINY, f"{analyzer} round-trips: give it a tiny training budget in TINY"
    adapter = get_adapter(str(contract.dataset))
    twin = adapter.write_synthetic(tmp_path / "twin", n=TWIN_SIZE, seed=1)
    cases = _cases(analyzer, twin)
    assert cases, f"the {adapter.name} twin holds no records"
    for case in cases:
        _store(db, blobs, site, clinician, analyzer, case)

    out = tmp_path / "export"
    summary = export_feedback(session=db, blob_store=blobs, out=out, site_id=site.id, analyzers=[analyzer])
    assert summary.by_analyzer == {analyzer: len(cases)}, summary.skipped
    exported = out / adapter.name
    assert summary.by_dataset == {adapter.name: len(cases)} and exported.is_dir()
    manifest = json.loads((out / "EXPORT.json").read_text(encoding="utf-8"))
    assert {r["analyzer"] for r in manifest["records"]} == {analyzer}

    if db.get_bind().dialect.name != "sqlite":
        return  # the export is what depends on the database; evaluate and train run once, on the SQLite backend
    runner = CliRunner()
    model_twin = adapter.write_synthetic(tmp_path / "model-twin", n=TWIN_SIZE, seed=2)
    first = runner.invoke(
        app, ["train", analyzer, "--data", str(model_twin), "--out", str(tmp_path / "model"), *TINY[analyzer]]
    )
    assert first.exit_code == 0, first.output
    scored = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "model" / "artifact"),
            "--data",
            str(exported),
            "--split",
            "all",
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text(encoding="utf-8"))
    assert report["splits"]["all"]["n"] == len(cases) and report["analyzer"] == analyzer

    retrained = runner.invoke(
        app, ["train", analyzer, "--data", str(exported), "--out", str(tmp_path / "retrained"), *TINY[analyzer]]
    )
    assert retrained.exit_code == 0, retrained.output
    card = json.loads((tmp_path / "retrained" / "artifact" / "card.json").read_text(encoding="utf-8"))
    assert card["analyzer"] == analyzer and card["training_data"]["n_samples"] > 0


def _check_stated_reason(analyzer: str, db, blobs, site, clinician, tmp_path: Path) -> None:
    """An adapter whose writer cannot use a review: a reviewed study of the analyzer is skipped, with the reason."""
    contract = get_spec(analyzer)
    files = {}
    for slot in contract.slots:
        arr = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
        files[slot] = (_png(arr), f"{slot}.png", "image/png", {})
    codes = [c for c, _ in contract.labels] or [contract.name]
    truth: dict[str | None, dict[str, bool]] = {slot: dict.fromkeys(codes, True) for slot in contract.slots}
    _store(db, blobs, site, clinician, analyzer, Case(files, truth))
    summary = export_feedback(session=db, blob_store=blobs, out=tmp_path / "x", site_id=site.id, analyzers=[analyzer])
    assert summary.records == 0, f"{analyzer} states '{contract.no_export_reason}' but exported records"
    assert summary.skipped and all(analyzer in reason for reason in summary.skipped)
