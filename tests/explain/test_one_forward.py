"""One-forward explainers: every target's map equals the per-target path's, and the net runs forward once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.explain import gradcam_2d, gradcam_2d_many, gradcam_bilateral, gradcam_bilateral_many
from vitalens.explain.attribution1d import METHODS, attribute_1d, attribute_1d_many
from vitalens.nets import create_net


class _Counting(nn.Module):
    """Wraps a net and counts its forward calls."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0
        self.target_layer = "net." + net.target_layer

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(*args)


@pytest.fixture(scope="module")
def odir() -> nn.Module:
    torch.manual_seed(0)
    return create_net("odir_test").eval()


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.rand(1, 3, 96, 80, generator=g), torch.rand(1, 3, 96, 80, generator=g), torch.full((1, 1), 0.3)


def test_bilateral_many_equals_per_target_per_eye(odir: nn.Module, pair) -> None:
    left, right, age = pair
    targets = [0, 3, 5, 7]
    many = gradcam_bilateral_many(odir, left, right, age, targets)
    for eye in ("left", "right"):
        assert len(many[eye]) == len(targets)
        for k, t in enumerate(targets):
            single = gradcam_bilateral(odir, left, right, age, target_index=t, eye=eye)
            assert many[eye][k].shape == (96, 80) and many[eye][k].dtype == np.float32
            np.testing.assert_allclose(many[eye][k], single, atol=1e-4)
    assert not np.allclose(many["left"][0], many["left"][1], atol=1e-3)  # the targets differ


def test_bilateral_many_is_one_forward_and_keeps_mode(odir: nn.Module, pair) -> None:
    left, right, age = pair
    net = _Counting(odir).train()
    out = gradcam_bilateral_many(net, left, right, age, [1, 2, 4])
    assert net.calls == 1 and net.training
    assert gradcam_bilateral_many(net, left, right, age, []) == {"left": [], "right": []}
    assert net.calls == 1  # nothing shown, nothing run
    assert all(m.max() == pytest.approx(1.0, abs=1e-4) for m in out["left"] + out["right"])
    with pytest.raises(InputError, match="one patient"):
        gradcam_bilateral_many(odir, left.repeat(2, 1, 1, 1), right.repeat(2, 1, 1, 1), age.repeat(2, 1), [0])


def test_gradcam_2d_many_equals_gradcam_2d_for_logits_and_callables() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=4).eval()
    model.target_layer = "layer4"
    x = torch.rand(3, 64, 48)

    def log_p_any(row: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.softmax(row, dim=0)[[1, 2]].sum())

    class _Target:
        def __call__(self, row: torch.Tensor) -> torch.Tensor:
            return log_p_any(row)

    many = gradcam_2d_many(model, x, [0, 3, log_p_any])
    np.testing.assert_allclose(many[0], gradcam_2d(model, x, target_index=0), atol=1e-4)
    np.testing.assert_allclose(many[1], gradcam_2d(model, x, target_index=3), atol=1e-4)
    from pytorch_grad_cam import GradCAM

    with GradCAM(model=model, target_layers=[model.layer4]) as cam:
        reference = cam(input_tensor=x[None], targets=[_Target()])[0]
    np.testing.assert_allclose(many[2], reference, atol=1e-4)
    with pytest.raises(InputError, match=r"\(1, C, H, W\)"):
        gradcam_2d_many(model, x.repeat(2, 1, 1, 1), [0])


@pytest.mark.parametrize("method", METHODS)
def test_attribute_1d_many_equals_attribute_1d(method: str) -> None:
    torch.manual_seed(0)
    net = create_net("ecg_se_resnet1d_test", num_classes=5).eval()
    x = np.random.default_rng(0).normal(size=(12, 1000)).astype(np.float32)
    targets = [1, 4, 2]
    many = attribute_1d_many(net, x, targets, method=method, ig_steps=8)
    assert [a.target_index for a in many] == targets
    for a, t in zip(many, targets, strict=True):
        ref = attribute_1d(net, x, t, method=method, ig_steps=8)
        assert a.method == method
        np.testing.assert_allclose(a.per_lead, ref.per_lead, atol=1e-5)
        np.testing.assert_allclose(a.pooled, ref.pooled, atol=1e-5)
    assert not np.allclose(many[0].pooled, many[1].pooled, atol=1e-3)


def test_attribute_1d_many_is_one_forward() -> None:
    torch.manual_seed(0)
    net = _Counting(create_net("ecg_se_resnet1d_test", num_classes=5)).eval()
    x = torch.randn(12, 500)
    attribute_1d_many(net, x, [0, 1, 2, 3], method="saliency")
    assert net.calls == 1
    attribute_1d_many(net, x, [0, 1, 2], method="gradcam")
    assert net.calls == 2
    assert attribute_1d_many(net, x, [], method="saliency") == [] and net.calls == 2
    with pytest.raises(InputError, match="leads, samples"):
        attribute_1d_many(net, torch.zeros(1, 12, 100), [0])
