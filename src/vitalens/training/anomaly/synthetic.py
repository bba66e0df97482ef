"""Synthetic anomalies in feature space, made from normal features only: the negatives-free scorer's positives.

Why: the design trains its Transformer scorer with labelled abnormal images. A detector claimed to be "trained on
normal images only" cannot, so its scorer instead learns to tell normal features from *perturbed* normal features
(the outlier-exposure idea without any outlier data). Three perturbations, drawn per sample, in the standardised
feature space (unit variance per feature over the training normals):

- ``sparse_shift``: 5–25 % of the features shifted by ±(1.5–4) standard deviations (a local change of appearance);
- ``noise``: isotropic Gaussian noise of 0.5–1.5 standard deviations per feature (a global change);
- ``extrapolate``: ``a + λ (a − b)`` for two normals ``a``, ``b`` and λ in 1–3 (leaving the normal cloud along a
  direction it actually varies in).

Image-space synthetic anomalies (opacities painted on normal radiographs) are
:class:`vitalens.data.cxr_transforms.SyntheticOpacity`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = ["FEATURE_PERTURBATIONS", "FeatureSpaceAnomalies"]

logger = logging.getLogger(__name__)

FEATURE_PERTURBATIONS: tuple[str, ...] = ("sparse_shift", "noise", "extrapolate")


class FeatureSpaceAnomalies:
    """Draw ``n`` synthetic anomalies from standardised normal features ``(N, D)``.

    Args:
        kinds: the perturbations to mix (uniformly).
        seed: seed of this instance's generator.
    """

    def __init__(self, kinds: Sequence[str] = FEATURE_PERTURBATIONS, seed: int = 0) -> None:
        for kind in kinds:
            if kind not in FEATURE_PERTURBATIONS:
                raise unknown_name_error("feature perturbation", kind, FEATURE_PERTURBATIONS)
        if not kinds:
            raise InputError("at least one feature perturbation is needed", field="kinds")
        self.kinds = tuple(kinds)
        self._gen = torch.Generator().manual_seed(int(seed))

    def set_random_state(self, seed: int) -> FeatureSpaceAnomalies:
        self._gen.manual_seed(int(seed))
        return self

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, 1, generator=self._gen)

    def __call__(self, normals: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` anomalies ``(n, D)`` from the rows of ``normals`` ``(N, D)`` (N ≥ 2)."""
        if normals.ndim != 2 or normals.shape[0] < 2:
            raise InputError(f"need (N ≥ 2, D) normal features, got {tuple(normals.shape)}", field="normals")
        x = normals.detach().to(torch.float32).cpu()
        num, dim = x.shape
        a = x[torch.randint(num, (n,), generator=self._gen)]
        kind = torch.randint(len(self.kinds), (n,), generator=self._gen)
        out = a.clone()
        for k, name in enumerate(self.kinds):
            rows = kind == k
            m = int(rows.sum())
            if m == 0:
                continue
            base = a[rows]
            if name == "sparse_shift":
                frac = self._u(m, 0.05, 0.25)
                mask = (torch.rand(m, dim, generator=self._gen) < frac).float()
                sign = torch.where(torch.rand(m, dim, generator=self._gen) < 0.5, -1.0, 1.0)
                out[rows] = base + mask * sign * self._u(m, 1.5, 4.0)
            elif name == "noise":
                out[rows] = base + torch.randn(m, dim, generator=self._gen) * self._u(m, 0.5, 1.5)
            else:  # extrapolate
                b = x[torch.randint(num, (m,), generator=self._gen)]
                out[rows] = base + self._u(m, 1.0, 3.0) * (base - b)
        return out.to(normals.dtype)
