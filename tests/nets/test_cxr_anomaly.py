"""The chest X-ray anomaly stages: the design's exact VAE and scorer, exact z-scoring and fusion, the distances,
the fixed projection, and the composite net's surface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vitalens.errors import InputError, UnknownNameError
from vitalens.nets import create_net, list_nets
from vitalens.nets.anomaly_scoring import FUSION_WEIGHTS, GaussianDistance, KnnDistance, ZScore, fuse_scores
from vitalens.nets.cxr_anomaly import ANOMALY_OUTPUTS, CxrAnomalyNet, orthonormal_projection
from vitalens.nets.feature_encoder import FrozenFeatureEncoder
from vitalens.nets.feature_vae import FeatureVAE, kl_divergence, reconstruction_error
from vitalens.nets.latent_scorer import LatentTransformerScorer


def _layer_types(seq: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in seq]


def test_vae_is_the_design() -> None:
    vae = FeatureVAE()
    linears = [m for m in vae.modules() if isinstance(m, nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    # encoder 512→512→384, mu/logvar 384→256, decoder 256→384→512, output 512→512 (symmetric)
    assert shapes == [(512, 512), (512, 384), (384, 256), (384, 256), (256, 384), (384, 512), (512, 512)]
    block = ["Linear", "LayerNorm", "GELU", "Dropout"]
    assert _layer_types(vae.encoder) == block * 2 and _layer_types(vae.decoder_body) == block * 2
    assert all(m.p == 0.1 for m in vae.modules() if isinstance(m, nn.Dropout))
    assert vae.beta == 0.001


def test_kl_and_recon_exact() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # KL = -1/2 Σ(1 + logσ² − μ² − σ²): row 0 → -1/2[(1+0−1−1) + (1+ln2−0−2)] = 1 − ln2/2; row 1 → 0
    np.testing.assert_allclose(kl_divergence(mu, logvar).numpy(), [1.0 - math.log(2.0) / 2.0, 0.0], rtol=1e-6)
    x, r = torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[1.0, 0.0, 3.0, 5.0]])
    assert reconstruction_error(x, r).item() == pytest.approx((0 + 4 + 0 + 1) / 4)
    vae = FeatureVAE(8, (8, 6), 4).eval()
    recon, mu1, _ = vae(torch.ones(2, 8))
    recon2, _, _ = vae(torch.ones(2, 8))
    torch.testing.assert_close(recon, recon2)  # eval: the posterior mean, deterministic


def test_scorer_is_the_design_and_attention_is_a_distribution() -> None:
    scorer = LatentTransformerScorer().eval()
    assert (scorer.n_patches, scorer.patch_dim, scorer.embed.out_features, len(scorer.blocks)) == (8, 32, 128, 6)
    assert all(b.attn.num_heads == 8 for b in scorer.blocks)
    assert scorer.pos_embed.shape == (1, 9, 128)  # CLS + 8 patches
    z = torch.randn(3, 256)
    assert scorer(z).shape == (3,)
    att = scorer.cls_attention(z)
    assert att.shape == (3, 8) and torch.all(att >= 0)
    torch.testing.assert_close(att.sum(1), torch.ones(3))
    with pytest.raises(InputError, match="latent"):
        scorer(torch.randn(3, 255))
    with pytest.raises(InputError, match="divisible"):
        LatentTransformerScorer(latent_dim=250)


def test_zscore_exact_sample_std() -> None:
    z = ZScore(1).fit(np.array([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5, sample sd sqrt(5/3) = 1.2909944
    assert z.stats() == pytest.approx({"mean": 2.5, "std": math.sqrt(5.0 / 3.0)})
    assert z(torch.tensor([5.0, 2.5])).tolist() == pytest.approx([2.5 / math.sqrt(5.0 / 3.0), 0.0], rel=1e-6)
    flat = ZScore(1).fit(np.array([3.0, 3.0]))  # constant: floored, finite
    assert torch.isfinite(flat(torch.tensor([4.0]))).all()
    with pytest.raises(InputError, match="at least 2"):
        ZScore(1).fit(np.array([1.0]))
    wide = ZScore(2).fit(np.array([[0.0, 10.0], [2.0, 30.0]]))
    assert wide(torch.tensor([[1.0, 20.0]]))[0].tolist() == pytest.approx([0.0, 0.0])


def test_fusion_exact_and_edges() -> None:
    assert FUSION_WEIGHTS == (0.4, 0.2, 0.4)
    # σ(0) = 0.5, σ(ln 3) = 0.75: 0.4·0.5 + 0.2·0.75 + 0.4·0.9 = 0.71
    out = fuse_scores(torch.tensor([0.0]), torch.tensor([math.log(3.0)]), torch.tensor([0.9]))
    assert out.item() == pytest.approx(0.71, abs=1e-7)
    # the extremes: all evidence normal → 0, all abnormal → 1
    assert fuse_scores(torch.tensor([-1e4]), torch.tensor([-1e4]), torch.tensor([0.0])).item() == pytest.approx(0.0)
    assert fuse_scores(torch.tensor([1e4]), torch.tensor([1e4]), torch.tensor([1.0])).item() == pytest.approx(1.0)
    with pytest.raises(InputError, match="sum"):
        fuse_scores(torch.zeros(1), torch.zeros(1), torch.zeros(1), (0.5, 0.5, 0.5))


def test_gaussian_and_knn_exact() -> None:
    g = GaussianDistance(2)
    g.mean.copy_(torch.tensor([1.0, 1.0]))
    g.precision.copy_(torch.tensor([[4.0, 0.0], [0.0, 1.0]]))
    # d = (x − μ) = (1, 2): dᵀ P d = 4·1 + 1·4 = 8
    assert g(torch.tensor([[2.0, 3.0]])).item() == pytest.approx(math.sqrt(8.0), rel=1e-5)
    fitted = GaussianDistance(3).fit(np.random.default_rng(0).normal(size=(50, 3)))
    assert fitted.shrinkage is not None and 0 <= fitted.shrinkage <= 1
    knn = KnnDistance(1, bank_size=4, k=2).fit(np.array([[0.0], [1.0], [3.0], [10.0]]))
    assert knn(torch.tensor([[0.5]])).item() == pytest.approx((0.5 + 0.5) / 2)
    # leave-one-out for the bank itself: row 0's nearest others are 1 and 3
    assert knn(torch.tensor([[0.0]]), exclude_self=True).item() == pytest.approx(2.0)


def test_projection_is_fixed_and_isometric() -> None:
    p = orthonormal_projection(152, 512, seed=0)
    assert p.shape == (152, 512)
    torch.testing.assert_close(p @ p.T, torch.eye(152), atol=1e-5, rtol=0)
    torch.testing.assert_close(p, orthonormal_projection(152, 512, seed=0))
    x = torch.randn(5, 152)
    torch.testing.assert_close(torch.cdist(x @ p, x @ p), torch.cdist(x, x), atol=1e-4, rtol=1e-4)
    assert orthonormal_projection(600, 512, seed=1).shape == (600, 512)


def test_encoder_is_frozen_pruned_and_names_its_gradcam_layer() -> None:
    enc = FrozenFeatureEncoder("test_efficientnet", feature_indices=(2, 3))
    assert enc.num_features == 32 + 48 and enc.stage_modules == ("blocks.2", "blocks.3")
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 80)
    assert enc.target_layer == "encoder.blocks.3"
    with pytest.raises(InputError, match="feature_indices"):
        FrozenFeatureEncoder("test_efficientnet", feature_indices=(9,))


@pytest.fixture(scope="module")
def tiny() -> CxrAnomalyNet:
    torch.manual_seed(0)
    return create_net("cxr_anomaly_test", knn_bank_size=6).eval()


def test_composite_surface_and_consistency(tiny: CxrAnomalyNet) -> None:
    assert {"cxr_anomaly", "cxr_anomaly_lite0", "cxr_anomaly_vgg16", "cxr_anomaly_test"} <= set(list_nets("cxr_*"))
    x = torch.rand(3, 3, 64, 64)
    s = tiny.scores(x)
    assert set(ANOMALY_OUTPUTS) <= set(s)
    for key in ANOMALY_OUTPUTS:
        assert s[key].shape == (3,) and torch.all((s[key] >= 0) & (s[key] <= 1)), key
    fused = fuse_scores(tiny.recon_z(s["recon_error"]), tiny.kl_z(s["kl_divergence"]), s["scorer"])
    torch.testing.assert_close(s["fusion"], fused)
    logit = tiny(x)
    assert logit.shape == (3, 1)
    torch.testing.assert_close(torch.sigmoid(logit[:, 0]), s["fusion"], atol=1e-5, rtol=1e-5)
    assert tiny.get_submodule(tiny.target_layer) is tiny.encoder.encoder.blocks[3]
    assert tiny.describe()["projection"].startswith("fixed orthonormal 80 → 64")


def test_output_choice_and_validation() -> None:
    with pytest.raises(UnknownNameError, match="anomaly output"):
        create_net("cxr_anomaly_test", output="magic")
    with pytest.raises(ValueError, match="knn_bank_size"):
        create_net("cxr_anomaly_test", output="knn")
    net = create_net("cxr_anomaly_test", output="mahalanobis").eval()
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(torch.sigmoid(net(x)[:, 0]), net.scores(x)["mahalanobis"], atol=1e-5, rtol=1e-5)


def test_vgg16_variant_needs_no_projection() -> None:
    net = create_net("cxr_anomaly_vgg16")
    assert net.encoder.num_features == 512 and not net.projected
    assert "none" in net.describe()["projection"]
