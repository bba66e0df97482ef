"""Bootstrap intervals (sample and patient resampling) and the cross-validation summary of out-of-fold predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitalens.synth import write_aptos_synth
from vitalens.training.bootstrap import bootstrap_ci
from vitalens.training.crossval import cross_validate, summarise


def test_bootstrap_constant_metric_and_clusters() -> None:
    x = np.ones(10)
    ci = bootstrap_ci(lambda a: float(a.mean()), x, n_boot=50)
    assert ci == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 10, "n_clusters": 10, "n_boot_used": 50}
    clusters = ["a"] * 5 + ["b"] * 5
    ci = bootstrap_ci(lambda a: float(a.mean()), np.r_[np.zeros(5), np.ones(5)], clusters=clusters, n_boot=400)
    # Resampling two patients: means are 0, 0.5 or 1 — the interval spans all three.
    assert ci["n_clusters"] == 2 and ci["value"] == 0.5 and ci["low"] == 0.0 and ci["high"] == 1.0
    with pytest.raises(ValueError, match="same number of rows"):
        bootstrap_ci(lambda a, b: 0.0, np.ones(3), np.ones(4))


def test_bootstrap_skips_undefined_resamples() -> None:
    from sklearn.metrics import roc_auc_score

    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8])

    def auc(t: np.ndarray, p: np.ndarray) -> float:
        return float(roc_auc_score(t, p)) if 0 < t.sum() < t.size else float("nan")

    ci = bootstrap_ci(auc, y, s, n_boot=200, seed=1)
    assert ci["value"] == 1.0 and ci["n_boot_used"] < 200 and ci["low"] == 1.0


def test_summarise_exact_on_hand_made_predictions() -> None:
    labels = ["0", "1", "2", "3", "4"]
    y = np.eye(5)[[0, 1, 2, 3, 4, 2]]
    probs = np.eye(5)[[0, 1, 2, 3, 4, 1]] * 0.8 + 0.04
    s = summarise(probs, y, labels=labels, derived={"RDR": ["2", "3", "4"]}, ordinal=True, n_boot=100)
    assert s["n"] == 6 and s["accuracy"]["value"] == pytest.approx(5 / 6)
    assert 0 < s["quadratic_kappa"]["value"] < 1
    # RDR scores: referable images predicted 2–4 score 0.84 + 2·0.04 = 0.92; the grade-2 image predicted 1 and both
    # non-referable ones score 3·0.04 = 0.12. Pairs 4 × 2: six wins, two ties (½ each) → AUROC 7/8.
    assert s["RDR_auroc"]["value"] == pytest.approx((3 * 2 + 0.5 * 2) / 8)


#: A one-epoch fundus.dr recipe on the tiny test net: cross-validation's plumbing, not its accuracy.
TINY_DR_RECIPE: dict[str, Any] = {
    "analyzer": "fundus.dr",
    "net": {"name": "image_classifier_test", "pretrained": False},
    "train": {"max_epochs": 1, "batch_size": 8, "unfreeze_after": 0},
    "task": {"image_size": 32, "augment": False},
    "loss": {"name": "corn"},
}


def test_cross_validate_pools_every_sample_once(tmp_path: Path) -> None:
    root = write_aptos_synth(tmp_path / "aptos", n_per_grade=4, image_size=64)
    recipe = TINY_DR_RECIPE
    oof = cross_validate("fundus.dr", data=root, recipe=recipe, folds=2, work=tmp_path / "cv")
    assert sorted(oof.sample_ids) == sorted(p.stem for p in (root / "train_images").glob("*.png"))
    assert oof.probs.shape == (20, 5) and np.allclose(oof.probs.sum(1), 1.0)
    assert oof.derived == {"RDR": ["2", "3", "4"]} and len(oof.folds) == 2


def test_cross_validate_flips_and_encoder_init_from_a_fold_artifact(tmp_path: Path) -> None:
    """Test-time flips give other (still normalised) probabilities from the same models; ``net.init_encoder``
    starts a new run from a trained artifact's encoder, exactly (a missing folder is a clear error)."""
    import torch
    from safetensors.torch import load_file

    from vitalens.errors import ArtifactError
    from vitalens.nets import create_net
    from vitalens.nets.pretrained import load_encoder_from_artifact
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    root = write_aptos_synth(tmp_path / "aptos", n_per_grade=4, image_size=64)
    recipe = TINY_DR_RECIPE
    oof = cross_validate("fundus.dr", data=root, recipe=recipe, folds=2, work=tmp_path / "cv", flips=True)
    assert oof.probs_flips is not None and oof.probs_flips.shape == oof.probs.shape
    assert np.allclose(oof.probs_flips.sum(1), 1.0) and not np.allclose(oof.probs_flips, oof.probs)
    assert len(oof.to_dict()["probs_flips"]) == 20

    artifact = tmp_path / "cv" / "fold0" / "artifact"
    saved = {k.removeprefix("encoder."): v for k, v in load_file(str(artifact / "model.safetensors")).items()}
    cfg = Recipe.load({**recipe, "net": {**recipe["net"], "init_encoder": str(artifact)}})
    net = get_task("fundus.dr", cfg).build_net(None)  # type: ignore[arg-type]
    for key, value in net.encoder.state_dict().items():
        assert torch.equal(value, saved[key]), key
    with pytest.raises(ArtifactError, match="does not exist"):
        load_encoder_from_artifact(create_net("image_classifier_test", num_classes=4), tmp_path / "nowhere")
    with pytest.raises(ArtifactError, match="does not fit"):
        load_encoder_from_artifact(create_net("image_classifier_lite0", num_classes=4), artifact)
