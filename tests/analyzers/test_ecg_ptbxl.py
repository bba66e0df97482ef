"""ecg.ptbxl analyzer end to end on a tiny artifact saved in the test (random weights, fixed seed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from vitalens.analyzers import create_analyzer
from vitalens.analyzers.ecg_ptbxl import ATTRIBUTION_BINS, attribution_on_record, prepare_ecg
from vitalens.artifacts import CalibrationSpec, InputSpec, ModelCard, NetSpec, TrainingData, save_artifact
from vitalens.domain import RiskTier, StudyInputs
from vitalens.errors import InputError
from vitalens.io.ecg import STANDARD_LEADS, ECGRecord, write_wfdb
from vitalens.nets import create_net
from vitalens.synth.ptbxl import synth_ecg

LABELS = ["NORM", "MI", "STTC", "CD", "HYP"]
#: Calibrated probabilities the pinned artifact gives any input (±0.01), and what they must mean with the card's
#: thresholds (MI 0.3, others 0.5) and tier edges (Low < 0.2 ≤ Moderate < 0.5 ≤ High):
PINNED = {"NORM": 0.10, "MI": 0.62, "STTC": 0.35, "CD": 0.12, "HYP": 0.05}
PINNED_TIERS = {"MI": "High", "STTC": "Moderate", "CD": "Low", "HYP": "Low"}  # NORM has no tier
PINNED_POSITIVE = ["MI"]  # 0.62 ≥ 0.3; STTC 0.35 < 0.5
PINNED_TIER = "High"  # the highest abnormal class's tier


def make_tiny_ecg_artifact(
    folder: Path, *, resample_allowed: bool = True, probabilities: dict[str, float] | None = None
) -> Path:
    """A random-weight ``ecg_se_resnet1d_test`` artifact with a complete ecg.ptbxl card.

    With ``probabilities`` the classifier is pinned: its weights are scaled by 10⁻⁴ (gradients, hence the
    attributions, stay non-zero) and its biases set to T·logit(p), so after the card's temperature T = 2 every
    input gets those calibrated probabilities to about ±0.01: outputs with values a test can assert exactly.
    """
    torch.manual_seed(0)
    net = create_net("ecg_se_resnet1d_test", num_classes=5)
    if probabilities is not None:
        fc = net.get_classifier()
        with torch.no_grad():
            fc.weight.mul_(1e-4)
            p = torch.tensor([probabilities[c] for c in LABELS], dtype=fc.bias.dtype)
            fc.bias.copy_(2.0 * torch.log(p / (1 - p)))
    card = ModelCard(
        name="ecg-ptbxl-test",
        analyzer="ecg.ptbxl",
        labels=LABELS,
        label_names={"MI": "Myocardial infarction"},
        architecture=NetSpec(name="ecg_se_resnet1d_test", kwargs={"num_classes": 5}),
        input=InputSpec(
            modality="ecg",
            channels=12,
            fs_hz=100.0,
            duration_s=10.0,
            leads=list(STANDARD_LEADS),
            mean=[0.0] * 12,
            std=[0.2] * 12,
            resize_allowed=resample_allowed,
        ),
        thresholds={"NORM": 0.5, "MI": 0.3, "STTC": 0.5, "CD": 0.5, "HYP": 0.5},
        calibration=CalibrationSpec(method="temperature", params={"temperature": 2.0}, fitted_on="val"),
        training_data=TrainingData(datasets=["PTB-XL (synthetic twin)"], provenance="synthetic", n_samples=10),
        demonstration=True,
        explanation_method="saliency",
        extra={"tier_edges": [0.2, 0.5]},
    )
    save_artifact(folder, net, card)
    return folder


def _record(fs: float = 100.0, seconds: float = 10.0) -> ECGRecord:
    x = synth_ecg("MI", fs=100, seed=1)
    if fs != 100.0 or seconds != 10.0:
        from scipy.signal import resample

        x = resample(x, int(fs * 10), axis=1).astype(np.float32)[:, : int(fs * seconds)]
    return ECGRecord(signal=x, fs_hz=fs, leads=STANDARD_LEADS, source_format="derived")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_ecg_artifact(tmp_path_factory.mktemp("ecg") / "ecg-ptbxl", probabilities=PINNED)


def test_end_to_end(artifact: Path) -> None:
    analyzer = create_analyzer("ecg.ptbxl", artifact=artifact)
    result = analyzer(StudyInputs(ecg=_record()))
    assert [f.code for f in result.findings] == LABELS
    assert all(0.0 <= f.probability <= 1.0 and f.calibrated for f in result.findings)
    for f in result.findings:
        assert f.probability == pytest.approx(PINNED[f.code], abs=0.01), f.code
        assert (f.tier.value if f.tier else None) == PINNED_TIERS.get(f.code), f.code
    mi = next(f for f in result.findings if f.code == "MI")
    assert mi.threshold == 0.3 and mi.positive is True
    assert result.positive == PINNED_POSITIVE
    assert result.tier is RiskTier(PINNED_TIER) and result.demonstration
    assert result.extras["tier_edges"] == [0.2, 0.5] and result.extras["explanation_method"] == "saliency"
    (code, attr), *_ = result.extras["attribution"].items()
    assert np.asarray(attr["per_lead"]).shape == (12, ATTRIBUTION_BINS)
    ex = result.explanations[0]
    assert ex.target == code and ex.heatmap.shape == (12, 1000) and 0 <= ex.heatmap.min() <= ex.heatmap.max() <= 1
    assert ex.overlay_png[:8] == b"\x89PNG\r\n\x1a\n"  # the 12-lead sheet with the attribution shaded
    assert "decision support" in result.decision_support_notice.lower()
    assert result.model_dump_json()  # JSON-able (heatmaps excluded)


def _long_500hz_record(seconds: float = 12.0) -> ECGRecord:
    from scipy.signal import resample

    x = synth_ecg("MI", fs=100, seed=1)
    x = np.concatenate([x, x[:, : int(100 * (seconds - 10))]], axis=1)
    return ECGRecord(resample(x, int(500 * seconds), axis=1).astype(np.float32), 500.0, STANDARD_LEADS)


def test_attribution_maps_back_to_the_records_time_axis() -> None:
    """500 Hz, 12 s → model input 100 Hz, central 10 s (resampled samples 100..1099): exact positions."""
    rec = _long_500hz_record()
    ramp = np.tile(np.arange(1000, dtype=np.float64), (12, 1))
    out = attribution_on_record(ramp, rec, fs_hz=100, duration_s=10)
    assert out.shape == (12, 6000) and out.dtype == np.float32
    row = out[3]
    assert row[497] == 0.0  # 0.6 model samples before the window: the model never saw it
    assert row[498] == 0.0 and row[500] == 0.0  # the window's first sample (value 0)
    assert row[502] == pytest.approx(0.4) and row[505] == pytest.approx(1.0)  # interpolated between samples
    assert row[5495] == pytest.approx(999.0) and row[5497] == pytest.approx(999.0)
    assert row[5498] == 0.0 and row[5999] == 0.0  # after the window
    # same rate, shorter record (zero-padded for the model): the padding maps to nothing, the record is kept
    short = ECGRecord(np.zeros((12, 800), np.float32), 100.0, STANDARD_LEADS)
    out = attribution_on_record(ramp, short, fs_hz=100, duration_s=10)
    assert out.shape == (12, 800) and out[0, 0] == 0.0 and out[0, 799] == pytest.approx(799.0)
    # same rate and length: the identity
    same = ECGRecord(np.zeros((12, 1000), np.float32), 100.0, STANDARD_LEADS)
    np.testing.assert_array_equal(attribution_on_record(ramp, same, fs_hz=100, duration_s=10), ramp)


def test_stored_map_is_on_the_uploaded_records_axis(artifact: Path) -> None:
    """Before: the map was stored in the model's 100 Hz, cropped coordinates and never drawn."""
    rec = _long_500hz_record()
    result = create_analyzer("ecg.ptbxl", artifact=artifact)(StudyInputs(ecg=rec))
    assert result.explanations
    for ex in result.explanations:
        assert ex.heatmap.shape == (12, rec.n_samples)
        assert np.all(ex.heatmap[:, :495] == 0) and np.all(ex.heatmap[:, 5500:] == 0)  # outside the central 10 s
        assert ex.heatmap[:, 500:5495].max() > 0
        assert ex.overlay_png[:8] == b"\x89PNG\r\n\x1a\n" and "6000 samples at 500 Hz" in ex.note
    attr = result.extras["attribution"][result.explanations[0].target]
    assert attr["bin_s"] == pytest.approx(12.0 / ATTRIBUTION_BINS)


def test_resample_crop_pad_notes(artifact: Path, caplog) -> None:
    analyzer = create_analyzer("ecg.ptbxl", artifact=artifact)
    with caplog.at_level(logging.INFO):
        result = analyzer(StudyInputs(ecg=_record(fs=500.0)), explain=False)
    assert any("resampled from 500 Hz to 100 Hz" in w for w in result.warnings)
    assert not result.explanations
    x, notes = prepare_ecg(
        _record(seconds=8.0), leads=list(STANDARD_LEADS), fs_hz=100, duration_s=10, mean=None, std=None
    )
    assert x.shape == (12, 1000) and np.all(x[:, 800:] == 0) and "zero-padded" in notes[0]
    ramp = np.sin(np.arange(1200, dtype=np.float32) / 7.0)
    long = ECGRecord(np.tile(ramp, (12, 1)), 100.0, STANDARD_LEADS)
    x, notes = prepare_ecg(long, leads=list(STANDARD_LEADS), fs_hz=100, duration_s=10, mean=None, std=None)
    np.testing.assert_array_equal(x[0], ramp[100:1100])  # the central 10 s
    assert "cropped" in notes[0]


def test_shorter_than_the_cards_minimum_is_refused_and_padding_is_never_silent(artifact: Path, tmp_path: Path) -> None:
    """Before: a 10-sample CSV was zero-padded to 10 s and answered tier High, with only a warning saying so."""
    analyzer = create_analyzer("ecg.ptbxl", artifact=artifact)  # card: 10 s, no min_duration_s → 10 s needed
    with pytest.raises(InputError, match=r"ECG lasts 8 s \(800 samples at 100 Hz\); at least 10 s is needed") as info:
        analyzer(StudyInputs(ecg=_record(seconds=8.0)))
    assert info.value.field == "ecg"
    with pytest.raises(InputError, match=r"ECG lasts 0.1 s \(10 samples at 100 Hz\)"):
        analyzer(StudyInputs(ecg=_record(seconds=0.1)))
    # a card may accept shorter recordings: then the padding is said in the warnings *and* the explanation
    import json

    lenient = make_tiny_ecg_artifact(tmp_path / "lenient", probabilities=PINNED)
    card = json.loads((lenient / "card.json").read_text())
    card["input"]["min_duration_s"] = 5.0
    (lenient / "card.json").write_text(json.dumps(card))
    result = create_analyzer("ecg.ptbxl", artifact=lenient)(StudyInputs(ecg=_record(seconds=8.0)), explain=False)
    assert "zero-padded a 8.00 s recording to 10 s" in result.warnings
    assert result.explanation.startswith("Caution: zero-padded a 8.00 s recording to 10 s")
    with pytest.raises(InputError, match="at least 5 s is needed"):
        create_analyzer("ecg.ptbxl", artifact=lenient)(StudyInputs(ecg=_record(seconds=4.0)))


def test_contract_errors(tmp_path: Path) -> None:
    strict = make_tiny_ecg_artifact(tmp_path / "strict", resample_allowed=False)
    with pytest.raises(InputError, match="500 Hz"):
        create_analyzer("ecg.ptbxl", artifact=strict)(StudyInputs(ecg=_record(fs=500.0)))
    rec = _record()
    chest_missing = ECGRecord(rec.signal[:8], 100.0, STANDARD_LEADS[:8])
    with pytest.raises(InputError, match="V3"):
        create_analyzer("ecg.ptbxl", artifact=strict)(StudyInputs(ecg=chest_missing))
    with pytest.raises(InputError, match="ecg"):
        create_analyzer("ecg.ptbxl", artifact=strict)(StudyInputs())


def test_cli_analyze_ecg_json_and_plot(artifact: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from vitalens.cli import app

    x = synth_ecg("STTC", fs=100, seed=6)
    write_wfdb(tmp_path, "rec", x, 100, STANDARD_LEADS)
    plot = tmp_path / "sheet.png"
    args = ["analyze", "ecg", str(tmp_path / "rec.hea"), "--artifact", str(artifact), "--json", "--plot", str(plot)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["classes"] == LABELS and body["tier"] == PINNED_TIER
    assert body["tiers"] == PINNED_TIERS and body["positive"] == PINNED_POSITIVE
    assert body["decision_support_notice"].startswith("Decision support") and body["attribution"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(app, ["analyze", "ecg", str(tmp_path / "missing.hea"), "--artifact", str(artifact)])
    assert bad.exit_code == 2
