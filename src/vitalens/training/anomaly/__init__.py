"""Staged training of the normal-only chest X-ray anomaly detector (``cxr.anomaly``): Lightning modules for the VAE
and the latent scorer, synthetic anomalies made from normals, and the run that ties them together."""

from __future__ import annotations

from vitalens.training.anomaly.features import SplitFeatures, extract_features
from vitalens.training.anomaly.modules import OptimConfig, ScorerModule, VaeModule
from vitalens.training.anomaly.staged import (
    FittedPipeline,
    component_metrics,
    encode_splits,
    fit_pipeline,
    score_features,
    train_anomaly,
)
from vitalens.training.anomaly.synthetic import FEATURE_PERTURBATIONS, FeatureSpaceAnomalies

__all__ = [
    "FEATURE_PERTURBATIONS",
    "FeatureSpaceAnomalies",
    "FittedPipeline",
    "OptimConfig",
    "ScorerModule",
    "SplitFeatures",
    "VaeModule",
    "component_metrics",
    "encode_splits",
    "extract_features",
    "fit_pipeline",
    "score_features",
    "train_anomaly",
]
