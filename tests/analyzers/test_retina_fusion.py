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


# -- the multiclass head (DR grade × OCT class) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def multiclass(models: Path) -> Path:
    """The multiclass head trained on the same synthetic twins' encoders and pairs as the binary one."""
    overrides = {
        "net.name": "retina_fusion_test",
        "net.kwargs": {},
        "task.fundus_artifact": str(models / "fundus-dr"),
        "task.oct_artifact": str(models / "oct-kermany4"),
        "task.head.kind": "multiclass",
        "task.head.max_epochs": 5,
        "task.n_boot": 200,
    }
    artifact = train(
        "retina.fusion", data=models.parent / "data", out=models.parent / "run-multiclass", overrides=overrides
    )
    folder = models.parent / "multiclass-models" / "retina-fusion-multiclass"
    shutil.copytree(artifact, folder)
    for encoder in ("fundus-dr", "oct-kermany4"):
        (folder.parent / encoder).symlink_to(models / encoder)
    return folder


def _group_sums(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs[:, :5].sum(axis=1), probs[:, 5:].sum(axis=1)


def test_multiclass_head_trains_on_the_same_pairs_and_says_so(models: Path, multiclass: Path) -> None:
    from vitalens.artifacts import load_model, predict_probabilities

    card = ModelCard.read(multiclass)
    binary = ModelCard.read(models / "retina-fusion")
    assert card.labels == ["0", "1", "2", "3", "4", "CNV", "DME", "DRUSEN", "NORMAL"]
    assert card.output.problem == "multiclass" and card.output.params["groups"] == {"dr_grade": 5, "oct_class": 4}
    assert card.architecture.kwargs["groups"] == [5, 4] and card.architecture.kwargs["std_floor"] == 0.5
    assert "std_floor" not in binary.architecture.kwargs  # a recipe without one fits the binary head without one
    assert card.extra["head"] == "multiclass" and binary.extra["head"] == "binary"
    assert card.extra["records"] == binary.extra["records"]  # the same virtual pairs as the binary head
    assert VIRTUAL_PAIRS_NOTICE in card.limitations and card.extra["virtual_pairs"] == VIRTUAL_PAIRS_NOTICE
    assert card.demonstration and "virtual pair" in card.trained_on
    temps = card.calibration.params["group_temperatures"]
    assert set(temps) == {"dr_grade", "oct_class"} and all(0.05 <= t <= 20 for t in temps.values())
    comp = card.extra["comparison_multiclass_test"]
    n_test = card.training_data.splits["pairs"]["test"]["pairs"]
    assert comp["dr_grade"]["alone"]["analyzer"] == "fundus.dr"
    assert comp["oct_class"]["alone"]["analyzer"] == "oct.kermany4"
    for group, keys in (("dr_grade", {"accuracy", "quadratic_kappa"}), ("oct_class", {"accuracy", "macro_auroc"})):
        for who in ("fusion", "alone"):
            part = comp[group][who]
            assert part["metrics"]["n"] == n_test and {"top_label_ece", "reliability"} <= set(part)
            for key in keys:
                m = part[key]
                assert m["n"] == n_test
                if m["ci_low"] is not None:
                    assert m["ci_low"] <= m["value"] <= m["ci_high"]
        assert keys <= set(comp[group]["delta_fusion_minus_alone"])
    # proper distributions per group, whatever the input
    net, _ = load_model(multiclass)
    dims = card.input.extra["embeddings"]
    with torch.no_grad():
        raw = net(torch.randn(6, dims["fundus"]) * 3, torch.randn(6, dims["oct"]) * 3).numpy()
    probs = predict_probabilities(card, raw)
    assert probs.shape == (6, 9) and (probs >= 0).all()
    for sums in _group_sums(probs):
        np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    report = json.loads((multiclass.parent.parent / "run-multiclass" / "report.json").read_text())
    assert report["head"] == "multiclass" and set(report["comparison_multiclass"]) == {"dr_grade", "oct_class"}


def test_multiclass_analyzer_renders_its_classes_through_the_generic_blocks(models: Path, multiclass: Path) -> None:
    from vitalens.reports.sections import analyzer_blocks, resolve_blocks

    analyzer = create_analyzer("retina.fusion", artifact=multiclass, cache=ModelCache(budget_bytes=2**30), device="cpu")
    result = analyzer(_study())
    assert [f.code for f in result.findings[:9]] == ["0", "1", "2", "3", "4", "CNV", "DME", "DRUSEN", "NORMAL"]
    for eye in ("fundus_right", "fundus_left"):
        mine = [f for f in result.findings if f.input_name == eye]
        dr, oct_ = mine[:5], mine[5:]
        assert len(mine) == 9 and all(f.calibrated for f in mine)
        for group in (dr, oct_):
            assert sum(f.probability for f in group) == pytest.approx(1.0, abs=1e-6)
            (top,) = [f for f in group if f.positive]
            assert top.probability == max(f.probability for f in group)
        assert result.extras["expected_grade"][eye] == pytest.approx(sum(int(f.code) * f.probability for f in dr))
    assert VIRTUAL_PAIRS_NOTICE in result.warnings and "Decision support" in result.explanation
    assert {e.input_name for e in result.explanations} == {"fundus_right", "fundus_left", "oct"}
    stored = result.model_dump(mode="json")
    parts = resolve_blocks(analyzer_blocks("retina.fusion"), result=stored, findings=result.findings)
    kinds = [p.kind for p in parts]
    assert kinds.count("classes") == 2 and "findings" not in kinds
    grade, oct_part = (p for p in parts if p.kind == "classes")
    assert grade.columns == ["Class", "Right eye (OD)", "Left eye (OS)"] and len(grade.rows) == 6  # + expected grade
    assert [r[0].split(" · ")[0] for r in oct_part.rows] == ["CNV", "DME", "DRUSEN", "NORMAL"]
    table = next(p for p in parts if p.kind == "table" and "Multiclass" in p.title)
    assert {r[1] for r in table.rows} == {"Fundus + OCT (fusion)", "fundus.dr alone", "oct.kermany4 alone"}
    # the binary artifact renders its finding and no class table
    binary = create_analyzer(
        "retina.fusion", artifact=models / "retina-fusion", cache=ModelCache(budget_bytes=2**30), device="cpu"
    )
    b = binary(_study(), explain=False)
    kinds = [
        p.kind
        for p in resolve_blocks(analyzer_blocks("retina.fusion"), result=b.model_dump(mode="json"), findings=b.findings)
    ]
    assert "findings" in kinds and "classes" not in kinds


def test_a_bad_head_option_is_a_clear_error() -> None:
    from vitalens.training.engine import resolve_recipe
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    with pytest.raises(InputError, match=r"task\.head\.kind.*'binary' or 'multiclass'"):
        Recipe.load("recipes/retina.fusion.yaml", overrides=["task.head.kind=trinary"])
    with pytest.raises(InputError, match=r"task\.head"):
        Recipe.load("recipes/retina.fusion.yaml", overrides=["task.head=joint"])
    task = get_task("retina.fusion", Recipe.load("recipes/retina.fusion.yaml", overrides=["task.head=multiclass"]))
    assert task.multiclass and len(task.labels) == 9
    assert not get_task("retina.fusion", resolve_recipe("retina.fusion")).multiclass


def test_evaluate_refuses_the_multiclass_head_clearly(multiclass: Path, tmp_path: Path) -> None:
    from vitalens.training.evaluate import evaluate

    with pytest.raises(InputError, match="multiclass"):
        evaluate(multiclass, data=multiclass.parent.parent / "data", out=tmp_path / "eval", device="cpu")


def test_onnx_export_of_the_multiclass_head(multiclass: Path, tmp_path: Path) -> None:
    from vitalens.artifacts import load_model, predict_probabilities, verify_artifact
    from vitalens.artifacts.onnx import example_inputs, export_onnx, onnx_parity

    folder = tmp_path / "retina-fusion-multiclass"
    shutil.copytree(multiclass, folder)
    path = export_onnx(folder)
    card = verify_artifact(folder, expected_analyzer="retina.fusion")
    net, _ = load_model(folder)
    assert onnx_parity(net, path, example_inputs(card, 4), seed=1) <= 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = example_inputs(card, 3)
    feeds = {name: np.random.default_rng(0).standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    (raw,) = session.run(None, feeds)
    assert raw.shape == (3, 9)
    for sums in _group_sums(predict_probabilities(card, raw)):
        np.testing.assert_allclose(sums, 1.0, atol=1e-9)


def test_grouped_softmax_output() -> None:
    from vitalens.artifacts import CalibrationSpec, OutputSpec
    from vitalens.artifacts.outputs import output_probabilities, softmax

    z = np.random.default_rng(0).standard_normal((4, 5))
    spec = OutputSpec(problem="multiclass", head="softmax", params={"groups": {"a": 2, "b": 3}})
    cal = CalibrationSpec(method="temperature", params={"group_temperatures": {"a": 2.0, "b": 0.5}})
    p = output_probabilities(spec, cal, z)
    np.testing.assert_allclose(p[:, :2], softmax(z[:, :2] / 2.0))
    np.testing.assert_allclose(p[:, 2:], softmax(z[:, 2:] / 0.5))
    with pytest.raises(ValueError, match="expects 5 outputs"):
        output_probabilities(spec, cal, z[:, :4])


def test_std_floor_bounds_the_standardisation_of_dead_features() -> None:
    """A feature that is 0 on every training embedding (a dead ReLU) must not scale an unseen value by 1e6."""
    from vitalens.nets.fusion_head import EmbeddingFusionHead

    rng = torch.Generator().manual_seed(0)
    fundus, oct_ = torch.randn(50, 4, generator=rng), torch.randn(50, 3, generator=rng) * 10
    fundus[:, 0] = 0.0
    bare = EmbeddingFusionHead((4, 3), hidden=(8,)).fit_standardisation(fundus, oct_)
    floored = EmbeddingFusionHead((4, 3), hidden=(8,), std_floor=0.5).fit_standardisation(fundus, oct_)
    assert float(bare.std[0]) == pytest.approx(1e-6)
    assert float(floored.std[0]) == pytest.approx(0.5 * float(fundus.std(0).median()), rel=1e-5)
    assert float(floored.std[4:].min()) >= 0.5 * float(oct_.std(0).median()) - 1e-6  # per modality
    live = fundus.std(0)[1:4]
    torch.testing.assert_close(floored.std[1:4], live.clamp_min(float(floored.std[0])), rtol=1e-5, atol=1e-7)
    with pytest.raises(InputError, match="std_floor"):
        EmbeddingFusionHead((4, 3), std_floor=-1)


def test_bench_runs_both_heads_on_the_same_pairs(models: Path, tmp_path: Path) -> None:
    """``bench/retina_fusion.py`` on the synthetic twins: binary rows, then multiclass rows kept beside them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_retina_fusion", Path("bench/retina_fusion.py"))
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data, out = models.parent / "data", tmp_path / "retina_fusion.json"
    common = ["--fundus", str(data / "fundus"), "--oct", str(data / "oct"), "--models", str(models)]
    common += ["--n-boot", "100", "--threads", "1", "--out", str(out), "--set", "task.head.max_epochs=3"]
    common += ["--set", "net.name=retina_fusion_test", "--set", "net.kwargs={}"]
    assert bench.main([*common, "--head", "binary"]) == 0
    binary = json.loads(out.read_text())
    assert set(binary["comparison"]) == {"fusion", "fundus_only", "oct_only"} and "multiclass" not in binary
    assert bench.main([*common, "--head", "multiclass"]) == 0
    both = json.loads(out.read_text())
    assert both["comparison"] == binary["comparison"]  # the binary rows are kept
    mc = both["multiclass"]
    assert mc["test_pairs_same_as_bundled_binary"] is True
    assert mc["n_test_pairs"] == binary["pairs"]["test"]["pairs"]
    assert (out.parent / mc["figure"]).is_file()
    assert mc["comparison"]["dr_grade"]["alone"]["analyzer"] == "fundus.dr"
