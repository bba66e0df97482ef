"""``retina.fusion`` end to end on synthetic twins: tiny fundus.dr and oct.kermany4 encoders, the fusion run (three
heads on the same virtual pairs, calibration, comparison), the card's virtual-pairs statement, the analyzer on a
study with both images (per-eye findings, Grad-CAM in input coordinates through each encoder) and its refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vitalens.analyzers import create_analyzer, get_contract
from vitalens.artifacts import ModelCache, ModelCard
from vitalens.domain import StudyInputs
from vitalens.errors import ArtifactError, InputError
from vitalens.synth import write_aptos_synth, write_kermany_synth
from vitalens.synth.oct import render_bscan
from vitalens.synth.odir import EyeFindings, render_fundus
from vitalens.training.engine import train
from vitalens.training.tasks.retina_fusion import VIRTUAL_PAIRS_NOTICE


def _single(analyzer: str) -> dict[str, Any]:
    return {
        "analyzer": analyzer,
        "net": {"name": "image_classifier_test", "pretrained": False},
        "train": {"max_epochs": 1, "batch_size": 8, "unfreeze_after": 0, "progress_bar": False},
        "task": {"image_size": 32, "augment": False},
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("fusion")
    data = base / "data"
    data.mkdir()
    aptos = write_aptos_synth(base / "aptos", n_per_grade=10, image_size=64, seed=0)
    kermany = write_kermany_synth(base / "OCT2017", n_patients=36, height=48, width=64, seed=1)
    (data / "fundus").symlink_to(aptos)
    (data / "oct").symlink_to(kermany)
    models = base / "models"
    for analyzer, root, folder in (("fundus.dr", aptos, "fundus-dr"), ("oct.kermany4", kermany, "oct-kermany4")):
        artifact = train(analyzer, data=root, out=base / f"run-{folder}", recipe=_single(analyzer))
        shutil.copytree(artifact, models / folder)
    overrides = {
        "net.name": "retina_fusion_test",
        "net.kwargs": {},
        "task.fundus_artifact": str(models / "fundus-dr"),
        "task.oct_artifact": str(models / "oct-kermany4"),
        "task.head.max_epochs": 5,
        "task.n_boot": 200,
    }
    artifact = train("retina.fusion", data=data, out=base / "run-fusion", overrides=overrides)
    shutil.copytree(artifact, models / "retina-fusion")
    return models


def test_card_states_virtual_pairs_and_compares_on_the_same_pairs(models: Path) -> None:
    card = ModelCard.read(models / "retina-fusion")
    assert card.analyzer == "retina.fusion" and card.labels == ["disease"]
    assert card.extra["virtual_pairs"] == VIRTUAL_PAIRS_NOTICE and VIRTUAL_PAIRS_NOTICE in card.limitations
    assert card.demonstration and card.training_data.provenance == "synthetic"
    assert set(card.extra["encoders"]) == {"fundus", "oct"}
    assert card.extra["encoders"]["fundus"]["artifact"] == "fundus-dr"
    comp = card.extra["comparison_test"]
    n = {k: comp[k]["test_auroc"]["n"] for k in ("fusion", "fundus_only", "oct_only")}
    assert len(set(n.values())) == 1 and n["fusion"] == card.training_data.splits["pairs"]["test"]["pairs"]
    for key in ("fusion", "fundus_only", "oct_only"):
        cal = comp[key]["calibration_test"]
        assert {"ece", "ece_uncalibrated", "brier", "brier_uncalibrated", "reliability"} <= set(cal)
        assert comp[key]["temperature"] > 0
    assert {"delta_auroc_vs_fundus_only", "delta_auroc_vs_oct_only"} <= set(comp["fusion"])
    assert card.calibration.method == "temperature" and 0 <= card.threshold("disease") <= 1
    pairs = card.training_data.splits["pairs"]
    assert pairs["train"]["pairs"] == pairs["train"]["fundus_images"]  # every fundus image paired once


def _study(seed: int = 0, both_eyes: bool = True) -> StudyInputs:
    rng = np.random.default_rng(seed)
    right = render_fundus(rng, 160, "right", EyeFindings())
    left = render_fundus(rng, 144, "left", EyeFindings()) if both_eyes else None
    return StudyInputs(fundus_right=right, fundus_left=left, oct=render_bscan(rng, "DME", 128, 160))


def test_analysis_with_both_images(models: Path) -> None:
    analyzer = create_analyzer(
        "retina.fusion", artifact=models / "retina-fusion", cache=ModelCache(budget_bytes=2**30), device="cpu"
    )
    study = _study()
    result = analyzer(study)
    assert [f.input_name for f in result.findings] == ["fundus_right", "fundus_left"]
    for f in result.findings:
        assert f.code == "disease" and 0 <= f.probability <= 1 and f.calibrated
    assert VIRTUAL_PAIRS_NOTICE in result.warnings and result.extras["virtual_pairs"] == VIRTUAL_PAIRS_NOTICE
    assert [r["model"] for r in result.extras["comparison"]] == ["Fundus + OCT (fusion)", "Fundus only", "OCT only"]
    shapes = {(e.input_name, e.heatmap.shape) for e in result.explanations}
    assert {("fundus_right", (160, 160)), ("fundus_left", (144, 144)), ("oct", (128, 160))} <= shapes
    assert all(np.isfinite(e.heatmap).all() for e in result.explanations)
    one_eye = analyzer(_study(both_eyes=False), explain=False)
    assert [f.input_name for f in one_eye.findings] == ["fundus_right"]


def test_contract_and_refusals(models: Path) -> None:
    c = get_contract("retina.fusion")
    assert c.inputs == ("oct",) and c.any_of == {"eye": ("fundus_right", "fundus_left")}
    analyzer = create_analyzer(
        "retina.fusion", artifact=models / "retina-fusion", cache=ModelCache(budget_bytes=2**30), device="cpu"
    )
    with pytest.raises(InputError, match="missing"):
        analyzer(StudyInputs(oct=render_bscan(np.random.default_rng(0), "NORMAL", 128, 160)))
    gray_fundus = render_fundus(np.random.default_rng(0), 160, "right", EyeFindings()).mean(axis=2).astype(np.uint8)
    with pytest.raises(InputError):
        analyzer(StudyInputs(fundus_right=gray_fundus, oct=render_bscan(np.random.default_rng(0), "CNV", 128, 160)))


def test_a_swapped_encoder_is_refused(models: Path, tmp_path: Path) -> None:
    shutil.copytree(models / "retina-fusion", tmp_path / "retina-fusion")
    shutil.copytree(models / "fundus-dr", tmp_path / "fundus-dr")
    shutil.copytree(models / "fundus-dr", tmp_path / "oct-kermany4")  # wrong artifact under the OCT name
    analyzer = create_analyzer(
        "retina.fusion", artifact=tmp_path / "retina-fusion", cache=ModelCache(budget_bytes=2**30)
    )
    with pytest.raises(ArtifactError):
        analyzer(_study(), explain=False)


def test_report_has_the_comparison(models: Path) -> None:
    report = json.loads((models.parent / "run-fusion" / "report.json").read_text())
    assert set(report["comparison"]) == {"fusion", "fundus_only", "oct_only"}
    assert report["splits"]["test"]["n"] == report["comparison"]["fusion"]["test_auroc"]["n"]


def test_evaluate_reads_the_recorded_pairs(models: Path, tmp_path: Path) -> None:
    """``vitalens evaluate`` scores exactly the test pairs the card lists (no rebuild, no warning)."""
    from vitalens.training.evaluate import evaluate

    card = ModelCard.read(models / "retina-fusion")
    records = card.extra["records"]
    sizes = {s: p["pairs"] for s, p in card.training_data.splits["pairs"].items()}
    assert {s: len(v) for s, v in records.items()} == sizes
    assert card.training_data.splits["kind"] == "recorded pairs"
    assert card.trained_on.endswith(f"{card.training_data.n_samples} virtual pairs)")
    report = evaluate(models / "retina-fusion", data=models.parent / "data", out=tmp_path / "eval", device="cpu")
    trained = json.loads((models.parent / "run-fusion" / "report.json").read_text())["splits"]["test"]
    assert "warning" not in report
    assert report["evaluated_on"]["n_records"] == sizes["test"] and report["evaluated_on"]["n_excluded"] == 0
    assert report["splits"]["test"]["macro_auroc"] == pytest.approx(trained["macro_auroc"], abs=1e-9)


def test_count_phrase_names_each_modality_by_its_unit() -> None:
    from vitalens.training.engine import resolve_recipe
    from vitalens.training.tasks import get_task
    from vitalens.training.tasks._base import DataBundle

    task = get_task("retina.fusion", resolve_recipe("retina.fusion"))
    counted = {"fundus": {"n": 150, "patients": False}, "oct": {"n": 85, "patients": True}}
    bundle = DataBundle(None, None, None, {}, "real", [], 235, meta={"counted": counted})
    assert task.count_phrase(bundle) == "150 fundus images without patient ids and 85 OCT patients"


def test_onnx_export_of_the_two_embedding_head(models: Path, tmp_path: Path) -> None:
    """The head takes one embedding per encoder: exported with both as named inputs, verified, sha256 recorded."""
    import onnxruntime as ort

    from vitalens.artifacts import ONNX_FILE, load_model, sha256_file, verify_artifact
    from vitalens.artifacts.onnx import example_inputs, export_onnx, onnx_parity

    folder = tmp_path / "retina-fusion"
    shutil.copytree(models / "retina-fusion", folder)
    path = export_onnx(folder)
    card = verify_artifact(folder, expected_analyzer="retina.fusion")
    assert card.files[ONNX_FILE] == sha256_file(path)
    dims = card.input.extra["embeddings"]
    assert example_inputs(card, 5) == {"fundus": (5, dims["fundus"]), "oct": (5, dims["oct"])}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["fundus", "oct"]
    net, _ = load_model(folder)
    assert onnx_parity(net, path, example_inputs(card, 7), seed=3) <= 1e-4  # a batch size not used at export
    # on embeddings like the encoders' (the head's own standardisation statistics), the logits agree absolutely
    rng = np.random.default_rng(0)
    xs = [
        (net.mean[a:b] + net.std[a:b] * torch.from_numpy(rng.standard_normal((3, b - a)).astype(np.float32)))
        for a, b in ((0, dims["fundus"]), (dims["fundus"], dims["fundus"] + dims["oct"]))
    ]
    with torch.no_grad():
        expected = net(*xs).numpy()
    actual = session.run(None, {"fundus": xs[0].numpy(), "oct": xs[1].numpy()})[0]
    assert np.abs(actual - expected).max() <= 1e-4
