"""A tiny ``cxr.anomaly`` artifact in seconds: random ``cxr_anomaly_test`` VAE and scorer, statistics fitted on
synthetic normal radiographs (so the distances and z-scores are real), an honest card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vitalens.artifacts import CalibrationSpec, InputSpec, ModelCard, NetSpec, TrainingData, save_artifact
from vitalens.data.cxr_transforms import CxrPreprocess
from vitalens.nets import create_net
from vitalens.synth.cxr import render_cxr
from vitalens.training.anomaly.staged import out_of_fold_gaussian_distances

SIZE = 64
N_NORMALS = 48


def _uploaded(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop of aspect up to 1.25 either way, as a portrait or landscape film is."""
    cut = int(rng.integers(0, 20))
    return (
        image[:, cut // 2 : image.shape[1] - cut // 2]
        if rng.random() < 0.5
        else image[cut // 2 : image.shape[0] - cut // 2]
    )


def make_tiny_cxr_artifact(
    folder: Path, *, seed: int = 0, output: str = "fusion", extra: dict[str, object] | None = None
) -> Path:
    """Write ``folder`` as a cxr.anomaly artifact fitted on synthetic normals (``extra`` updates the card's extra);
    returns the folder."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = create_net("cxr_anomaly_test", knn_bank_size=N_NORMALS, output=output).eval()
    pre = CxrPreprocess(SIZE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    x = torch.stack([pre(render_cxr(SIZE, "Normal", rng)) for _ in range(N_NORMALS)])
    # validation radiographs as uploads come: both classes, some portrait or landscape (the centre crop zooms in)
    val = torch.stack([pre(_uploaded(render_cxr(96, c, rng), rng)) for c in ("Normal", "COVID") * 12])
    with torch.no_grad():
        feats = net.forward_features(x)
        net.feature_norm.fit(feats)
        fs = net.standardize(feats)
        vae = net.vae.scores(net.project(fs))
        net.recon_z.fit(vae["recon"])
        net.kl_z.fit(vae["kl"])
        net.gaussian.fit(fs)
        net.gaussian_z.fit(out_of_fold_gaussian_distances(fs, folds=4))
        net.knn.fit(fs)
        net.knn_z.fit(net.knn(fs, exclude_self=True))
        d_val = net.scores(val)["mahalanobis_distance"].numpy()
    med, top = float(np.median(d_val)), float(d_val.max())
    card = ModelCard(
        name="cxr-anomaly-test",
        analyzer="cxr.anomaly",
        labels=["anomaly"],
        label_names={"anomaly": "Abnormal chest radiograph (anomaly score)"},
        architecture=NetSpec(name="cxr_anomaly_test", kwargs={"knn_bank_size": N_NORMALS, "output": output}),
        input=InputSpec(modality="cxr", channels=3, size=(SIZE, SIZE), min_size=SIZE, mean=[0.5] * 3, std=[0.5] * 3),
        thresholds={"anomaly": 0.5},
        threshold_method="fixed 0.5 (untrained test artifact)",
        calibration=CalibrationSpec(method="none"),
        training_data=TrainingData(
            datasets=["synthetic radiographs (test)"],
            provenance="synthetic",
            n_samples=N_NORMALS,
            splits={"class_counts": {"train": {"Normal": N_NORMALS}}},
        ),
        demonstration=True,
        intended_use="tests only",
        extra={
            "shipped_score": output,
            "trained_on_normal_images_only": True,
            "labelled_images_seen": {"vae": 0, "scorer": 0},
            "ood": {"flag_above": top, "refuse_above": med + 3.0 * (top - med), "statistic": "mahalanobis_distance"},
            **(extra or {}),
        },
    )
    save_artifact(folder, net, card)
    return folder
