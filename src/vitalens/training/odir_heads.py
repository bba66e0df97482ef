"""Fusion heads on cached frozen-trunk ODIR features, and their patient-level k-fold cross-validation.

Why: with the trunk frozen (:mod:`vitalens.training.odir_features`) a head trains in seconds, so every lever the
issue asks about (per-eye auxiliary targets, derived N, augmentation views, test-time flips, ensembles, Lite1/2
trunks) is measured on the same 5 patient-level folds, every patient scored once out of fold. The head is the
net's own (:func:`vitalens.nets.bilateral.fusion_layers`), so a trained head loads into
:class:`~vitalens.nets.bilateral.BilateralFusionNet` and the analyzer computes the very same logits.

Levers (:class:`HeadConfig`):
    aux_weight: weight of the per-eye auxiliary loss: a linear head on each eye's features predicts that eye's labels
        from the sheet's keywords (:mod:`vitalens.data.odir_keywords`); 0 switches it off.
    derived_normal: N is "no other label" (:func:`~vitalens.nets.bilateral.derive_normal_logit`), not learned.
    train_views / test_views: a random one of ``train_views`` per eye and step; logits averaged over
        ``test_views`` at scoring (test-time augmentation).
    n_members: heads trained with different seeds and averaged (logits) — the ensemble, measured out of fold.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from vitalens.nets.bilateral import derive_normal_logit, fusion_layers
from vitalens.training.odir_features import EyeFeatures

__all__ = [
    "HeadConfig",
    "FeatureHead",
    "train_head",
    "head_logits",
    "crossval_heads",
    "OofResult",
    "score_oof",
    "fast_auroc",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    """Hyper-parameters and levers of one head recipe (defaults: the net's head sizes, the bundled recipe's loss)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    drop_rate: float = 0.3
    feature_dropout: float = 0.2
    age_dim: int = 32
    head_hidden: tuple[int, int] = (512, 128)
    pos_weight_max: float = 20.0
    aux_weight: float = 0.0
    derived_normal: bool = False
    train_views: tuple[str, ...] = ("id",)
    test_views: tuple[str, ...] = ("id",)
    n_members: int = 1
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeatureHead(nn.Module):
    """The fusion head of :class:`~vitalens.nets.bilateral.BilateralFusionNet` on pooled features, plus the
    optional per-eye auxiliary classifier (training only; not shipped)."""

    def __init__(self, num_features: int, num_classes: int, cfg: HeadConfig) -> None:
        super().__init__()
        self.age_mlp, self.fusion, self.classifier = fusion_layers(
            num_features, cfg.age_dim, cfg.head_hidden, cfg.drop_rate, "relu", num_classes
        )
        self.eye_head = nn.Linear(num_features, num_classes) if cfg.aux_weight > 0 else None
        self.derived_normal = cfg.derived_normal

    def forward(self, left: torch.Tensor, right: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, F) of both eyes and the normalised age (B,) → patient logits (B, K)."""
        joined = torch.cat([left, right, self.age_mlp(age.reshape(-1, 1))], dim=1)
        logits = self.classifier(self.fusion(joined))
        return derive_normal_logit(logits) if self.derived_normal else logits

    def head_state(self) -> dict[str, torch.Tensor]:
        """The parameters the net's head takes (``age_mlp``, ``fusion``, ``classifier``)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("eye_head.")}


def _pos_weight(y: np.ndarray, cap: float) -> torch.Tensor:
    pos = y.sum(axis=0)
    neg = y.shape[0] - pos
    return torch.as_tensor(np.clip(neg / np.maximum(pos, 1.0), 1.0, cap), dtype=torch.float32)


def train_head(
    feats: np.ndarray,
    ages: np.ndarray,
    y: np.ndarray,
    cfg: HeadConfig,
    *,
    eye_y: np.ndarray | None = None,
    seed: int | None = None,
) -> FeatureHead:
    """Train one head on ``feats`` (N, 2, V, F) (views as in ``cfg.train_views``), normalised ``ages`` (N,),
    patient targets ``y`` (N, K) and, when ``cfg.aux_weight > 0``, per-eye targets ``eye_y`` (N, 2, K)."""
    if cfg.aux_weight > 0 and eye_y is None:
        raise ValueError("aux_weight > 0 needs per-eye targets")
    gen = torch.Generator().manual_seed(cfg.seed if seed is None else seed)
    torch.manual_seed(cfg.seed if seed is None else seed)
    n, _, n_views, n_feat = feats.shape
    k = y.shape[1]
    head = FeatureHead(n_feat, k, cfg)
    x = torch.as_tensor(feats, dtype=torch.float32)
    a = torch.as_tensor(ages, dtype=torch.float32)
    t = torch.as_tensor(y, dtype=torch.float32)
    te = torch.as_tensor(eye_y, dtype=torch.float32) if eye_y is not None else None
    bce = nn.BCEWithLogitsLoss(pos_weight=_pos_weight(y, cfg.pos_weight_max))
    bce_eye = (
        nn.BCEWithLogitsLoss(pos_weight=_pos_weight(eye_y.reshape(-1, k), cfg.pos_weight_max))
        if eye_y is not None
        else None
    )
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-n // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    head.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            view = torch.randint(n_views, (idx.numel(), 2), generator=gen)
            left = x[idx, 0, view[:, 0]]
            right = x[idx, 1, view[:, 1]]
            if cfg.feature_dropout > 0:
                left = nn.functional.dropout(left, cfg.feature_dropout, training=True)
                right = nn.functional.dropout(right, cfg.feature_dropout, training=True)
            loss = bce(head(left, right, a[idx]), t[idx])
            if head.eye_head is not None and te is not None and bce_eye is not None:
                eye_logits = head.eye_head(torch.cat([left, right]))
                loss = loss + cfg.aux_weight * bce_eye(eye_logits, torch.cat([te[idx, 0], te[idx, 1]]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def head_logits(heads: list[FeatureHead], feats: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """Patient logits (N, K): mean over ``heads`` and over the views in ``feats`` (N, 2, V, F), every
    combination of the same view for both eyes (what the net does for one flipped pair)."""
    x = torch.as_tensor(feats, dtype=torch.float32)
    a = torch.as_tensor(ages, dtype=torch.float32)
    total = None
    count = 0
    with torch.inference_mode():
        for head in heads:
            for v in range(x.shape[2]):
                z = head(x[:, 0, v], x[:, 1, v], a)
                total = z if total is None else total + z
                count += 1
    if total is None:
        raise ValueError("no head to score with")
    return (total / count).numpy().astype(np.float64)


@dataclass
class OofResult:
    """Out-of-fold logits of one head recipe, row-aligned with the dataset, and each row's fold."""

    logits: np.ndarray
    folds: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)
    heads: list[list[FeatureHead]] = field(default_factory=list)


def crossval_heads(
    features: EyeFeatures,
    ages_years: np.ndarray,
    y: np.ndarray,
    fold_of: np.ndarray,
    cfg: HeadConfig,
    *,
    eye_y: np.ndarray | None = None,
    keep_heads: bool = False,
    age_norm: tuple[float, float] | None = None,
) -> OofResult:
    """Train ``cfg`` on all folds but one and score the held-out one, for every fold; age is z-scored with
    ``age_norm`` (mean, SD in years) when given, else with the training folds' statistics."""
    from vitalens.data.torch_odir import age_stats

    train_idx = features.view_index(cfg.train_views)
    test_idx = features.view_index(cfg.test_views)
    logits = np.zeros(y.shape, dtype=np.float64)
    kept: list[list[FeatureHead]] = []
    for fold in np.unique(fold_of):
        tr, te = fold_of != fold, fold_of == fold
        mean, std = age_norm if age_norm is not None else age_stats(ages_years[tr])
        z_age = (ages_years - mean) / std
        members = [
            train_head(
                features.feats[tr][:, :, train_idx],
                z_age[tr],
                y[tr],
                cfg,
                eye_y=None if eye_y is None else eye_y[tr],
                seed=cfg.seed + 1000 * m + int(fold),
            )
            for m in range(cfg.n_members)
        ]
        logits[te] = head_logits(members, features.feats[te][:, :, test_idx], z_age[te])
        if keep_heads:
            kept.append(members)
    return OofResult(logits=logits, folds=np.asarray(fold_of), config=cfg.to_dict(), heads=kept)


def fast_auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC by the Mann-Whitney rank sum (ties count one half), equal to scikit-learn's ``roc_auc_score`` and
    ~100x cheaper, which the patient bootstrap needs on a shared CPU; NaN when a class is absent."""
    from scipy.stats import rankdata

    t = np.asarray(y).astype(bool).ravel()
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(s, dtype=float).ravel())
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _macro_auroc(y: np.ndarray, s: np.ndarray) -> float:
    vals = [fast_auroc(y[:, j], s[:, j]) for j in range(y.shape[1])]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def score_oof(
    logits: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    *,
    labels: list[str],
    patient_ids: list[str],
    calibration: str = "platt",
    n_boot: int = 1000,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Figures of out-of-fold logits: macro-AUROC and per-label AUROC with patient bootstrap 95 % intervals, and
    the ODIR challenge score, ECE and reliability of the probabilities ``calibration`` gives when fitted on the
    other folds (cross-fitted, :func:`~vitalens.training.calibration.crossfit_calibration`) — what the card's
    calibration, fitted on all out-of-fold logits, delivers on new patients."""
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import crossfit_calibration, expected_calibration_error, reliability_curve
    from vitalens.training.metrics import odir_challenge_score

    probs = crossfit_calibration(calibration, logits, y, folds)
    kw: dict[str, Any] = {"clusters": patient_ids, "n_boot": n_boot, "seed": 0}
    per_label = {}
    for j, label in enumerate(labels):

        def auc(t: np.ndarray, s: np.ndarray, j: int = j) -> float:
            return fast_auroc(t[:, j], s[:, j])

        per_label[label] = {**bootstrap_ci(auc, y, logits, **kw), "n_positive": int(y[:, j].sum())}
    return {
        "n_patients": int(y.shape[0]),
        "macro_auroc": bootstrap_ci(_macro_auroc, y, logits, **kw),
        "per_label_auroc": per_label,
        "calibration": calibration,
        "odir_score": odir_challenge_score(y, probs, 0.5),
        "ece": bootstrap_ci(lambda t, p: expected_calibration_error(p, t, n_bins), y, probs, **kw),
        "reliability": reliability_curve(probs, y, n_bins),
    }
