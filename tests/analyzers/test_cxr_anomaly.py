"""``cxr.anomaly``: the contract, one analysis end to end on a tiny artifact (score, components, Grad-CAM in the
upload's coordinates over CLAHE, latent attention), the bad-input paths (a colour photograph is refused, an image
unlike any radiograph is refused or flagged), the adapter's writer, and the ONNX export."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data_path
from tests.utils.cxr_artifact import make_tiny_cxr_artifact
from vitalens.analyzers import create_analyzer, get_contract
from vitalens.analyzers._contract import ThreePanel
from vitalens.analyzers.cxr_anomaly import DISTRIBUTION_GATE, FLAG_COLOUR_SPREAD, MAX_COLOUR_SPREAD, colour_spread
from vitalens.artifacts import ModelCache
from vitalens.data import ExportInput, ExportRecord, SkipRecord, get_adapter, is_adapter
from vitalens.data.covid_radiography import CovidRadiographyDataset
from vitalens.domain import DECISION_SUPPORT_NOTICE, StudyInputs
from vitalens.errors import InputError, QualityRefusal
from vitalens.synth.cxr import render_cxr
from vitalens.synth.odir import EyeFindings, render_fundus


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = make_tiny_cxr_artifact(tmp_path_factory.mktemp("cxr") / "artifact")
    return create_analyzer("cxr.anomaly", artifact=folder, cache=ModelCache(budget_bytes=2**30), device="cpu")


def test_contract() -> None:
    c = get_contract("cxr.anomaly")
    assert c.inputs == ("cxr",) and c.modality == "cxr" and c.default_artifact == "cxr-anomaly"
    assert c.dataset == "covid19_radiography" and is_adapter("covid19_radiography")
    assert c.quality_gates == {"cxr": ("cxr.gradable",)}
    assert ThreePanel(title="Grad-CAM over the CLAHE-enhanced radiograph", slot="cxr") in c.blocks
    assert c.labels == (("anomaly", "Abnormal chest radiograph (anomaly score)"),)


def test_colour_spread_exact() -> None:
    assert colour_spread(np.zeros((4, 4), np.uint8)) == 0.0
    assert colour_spread(np.full((2, 2, 3), 7, np.uint8)) == 0.0
    # (|10−20| + |20−40| + |10−40|) / 3 = 20 (luma 18.0 > 16: counted)
    img = np.tile(np.array([10, 20, 40], np.uint8), (3, 5, 1))
    assert colour_spread(img) == pytest.approx(20.0)
    img[0] = (0, 0, 60)  # luma 6.8: a dark pixel, left out
    assert colour_spread(img) == pytest.approx(20.0)
    assert colour_spread(np.zeros((2, 2, 3), np.uint8)) == 0.0


def test_one_analysis(analyzer) -> None:  # type: ignore[no-untyped-def]
    image = render_cxr(160, "COVID", np.random.default_rng(5))[:, 8:152]  # 160 × 144: not square
    result = analyzer(StudyInputs(cxr=image))
    (finding,) = result.findings
    assert finding.code == "anomaly" and finding.input_name == "cxr" and not finding.calibrated
    assert 0.0 <= finding.probability <= 1.0 and finding.threshold == 0.5
    assert finding.positive == (finding.probability >= 0.5)
    comps = result.extras["components"]
    assert set(comps) == {"fusion", "recon", "kl", "scorer", "recon_kl", "mahalanobis", "knn"}
    assert comps["fusion"] == pytest.approx(finding.probability)
    assert comps["fusion"] == pytest.approx(0.4 * comps["recon"] + 0.2 * comps["kl"] + 0.4 * comps["scorer"], abs=1e-6)
    att = result.extras["latent_attention"]
    assert [a["patch"] for a in att] == list(range(1, 9)) and sum(a["weight"] for a in att) == pytest.approx(
        1, abs=1e-3
    )
    assert result.extras["score_is_probability"] is False and result.extras["trained_on_normal_images_only"] is True
    (exp,) = result.explanations
    assert exp.input_name == "cxr" and exp.method == "grad-cam" and exp.heatmap.shape == image.shape
    assert np.isfinite(exp.heatmap).all() and 0 <= exp.heatmap.min() and exp.heatmap.max() <= 1
    with Image.open(io.BytesIO(exp.overlay_png)) as png:
        assert png.size == (144, 160)
    assert result.decision_support_notice == DECISION_SUPPORT_NOTICE and result.demonstration
    assert any("Demonstration model" in w for w in result.warnings)
    assert "not a diagnosis" in result.explanation


def test_the_normal_only_claim_follows_the_card(analyzer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The claim of normal-only fitting is made where the card makes it, and never for the labelled variant."""
    image = render_cxr(160, "Normal", np.random.default_rng(2))
    said = analyzer(StudyInputs(cxr=image), explain=False).explanation
    assert "fitted on 48 normal radiographs only." in said and "not a normal-only" not in said
    seen = {"vae": 0, "scorer": 30, "threshold_and_selection": 60}
    folder = make_tiny_cxr_artifact(
        tmp_path / "labelled", extra={"trained_on_normal_images_only": False, "labelled_images_seen": seen}
    )
    labelled = create_analyzer("cxr.anomaly", artifact=folder, cache=ModelCache(budget_bytes=2**30), device="cpu")
    result = labelled(StudyInputs(cxr=image), explain=False)
    assert result.extras["trained_on_normal_images_only"] is False
    assert "its scorer also on 30 labelled abnormal radiographs" in result.explanation
    assert "not a normal-only model" in result.explanation and "only;" not in result.explanation
    assert "60 labelled abnormal validation radiographs (never trained on) chose the operating threshold" in (
        result.explanation
    )


def test_rgb_radiograph_with_equal_channels_is_accepted(analyzer) -> None:  # type: ignore[no-untyped-def]
    gray = render_cxr(128, "Normal", np.random.default_rng(1))
    result = analyzer(StudyInputs(cxr=np.repeat(gray[..., None], 3, axis=2)), explain=False)
    assert result.findings and not result.explanations


def test_a_tinted_film_photograph_is_scored_but_flagged(analyzer) -> None:  # type: ignore[no-untyped-def]
    gray = render_cxr(128, "Normal", np.random.default_rng(1)).astype(np.int16).clip(20, 250)
    tinted = np.stack([gray + 1, gray, gray - 1], axis=2).astype(np.uint8)  # (1 + 1 + 2) / 3 = 4/3 everywhere
    assert colour_spread(tinted) == pytest.approx(4 / 3)
    assert FLAG_COLOUR_SPREAD < colour_spread(tinted) < MAX_COLOUR_SPREAD
    result = analyzer(StudyInputs(cxr=tinted), explain=False)
    assert result.extras["out_of_distribution"]["verdict"] == "flag"
    assert any("tinted" in w for w in result.warnings)


def test_a_fundus_photograph_is_refused_before_scoring(analyzer) -> None:  # type: ignore[no-untyped-def]
    fundus = render_fundus(np.random.default_rng(0), 128, "left", EyeFindings())
    assert colour_spread(fundus) > MAX_COLOUR_SPREAD
    with pytest.raises(InputError, match="colour image .* grayscale chest radiograph") as err:
        analyzer.validate_input("cxr", fundus)  # the same check runs at upload time
    assert err.value.field == "cxr"
    with pytest.raises(InputError, match="fundus photograph"):
        analyzer(StudyInputs(cxr=fundus))


def test_a_grayscale_non_radiograph_is_not_scored_with_confidence(analyzer) -> None:  # type: ignore[no-untyped-def]
    yy, xx = np.mgrid[0:128, 0:128]
    checkerboard = (((yy // 8) + (xx // 8)) % 2 * 255).astype(np.uint8)
    try:
        result = analyzer(StudyInputs(cxr=checkerboard), explain=False)
    except QualityRefusal as exc:
        assert "not a frontal chest radiograph" in str(exc)
    else:
        assert result.extras["out_of_distribution"]["verdict"] == "flag"
        assert any(q.gate == DISTRIBUTION_GATE for q in result.quality)


def test_distribution_limits_exact(analyzer) -> None:  # type: ignore[no-untyped-def]
    limits = analyzer.card.extra["ood"]
    flag, refuse = limits["flag_above"], limits["refuse_above"]
    assert analyzer._ood(flag)[0] == "pass"  # at the limit: still inside
    assert analyzer._ood(flag + 1e-6)[0] == "flag"
    assert analyzer._ood(refuse)[0] == "flag"
    verdict, reason = analyzer._ood(refuse + 1e-6)
    assert verdict == "refuse" and "not scored" in reason


def test_small_images_are_refused_by_the_card_limit(analyzer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="at least 128 px"):
        analyzer(StudyInputs(cxr=np.zeros((40, 40), np.uint8)))


def _record(labels: dict[str, bool], image: np.ndarray, rid: str) -> ExportRecord:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    data = buf.getvalue()
    return ExportRecord(
        record_id=rid,
        patient_id="p",
        labels=labels,
        inputs={"cxr": ExportInput("cxr", "x.png", "image/png", lambda: data, len(data))},
    )


def test_writer_exports_reviewed_normals_and_named_classes(tmp_path: Path) -> None:
    adapter = get_adapter("covid19_radiography")
    img = render_cxr(64, "Normal", np.random.default_rng(2))
    with adapter.writer(tmp_path) as w:
        assert w.add(_record({"anomaly": False}, img, "a")) == "Normal-1"
        assert w.add(_record({"anomaly": False}, img, "b")) == "Normal-2"
        assert w.add(_record({"anomaly": True, "COVID": True}, img, "c")) == "COVID-1"
        with pytest.raises(SkipRecord, match="no class of the layout"):
            w.add(_record({"anomaly": True}, img, "d"))
    ds = adapter.read(tmp_path)
    assert isinstance(ds, CovidRadiographyDataset)
    assert dict(ds.class_counts()) == {"Normal": 2, "COVID": 1}
    twin = adapter.write_synthetic(tmp_path / "twin", n=12)
    assert dict(adapter.read(twin).class_counts()) == {"Normal": 6, "COVID": 2, "Lung_Opacity": 2, "Viral Pneumonia": 2}


def test_onnx_export_matches(tmp_path: Path) -> None:
    from vitalens.artifacts.onnx import export_onnx

    folder = make_tiny_cxr_artifact(tmp_path / "art", output="mahalanobis")
    assert export_onnx(folder).is_file()


def test_real_fundus_photograph_is_refused(analyzer) -> None:  # type: ignore[no-untyped-def]
    path = shared_data_path("fundus", "odir", "images", "0_left.jpg")
    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"))
    with pytest.raises(InputError, match="colour image"):
        analyzer.validate_input("cxr", photo)
