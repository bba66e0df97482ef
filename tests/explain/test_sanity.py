"""Rank correlation exact values, cascading randomisation order, and the sanity check on a tiny net."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vitalens.errors import InputError
from vitalens.explain import (
    cascading_randomization,
    gradcam_bilateral,
    model_randomization_check,
    randomization_groups,
    randomize_groups_,
    rank_correlation,
    steps_as_dicts,
)
from vitalens.nets import create_net


def test_rank_correlation_exact_values() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert rank_correlation(a, a * 10 + 5) == pytest.approx(1.0)  # monotone transform: ranks equal
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(a, a**3) == pytest.approx(1.0)
    # ranks x = 1..5, y = 2,1,4,3,5: d² sum = 1+1+1+1+0 = 4, ρ = 1 − 6·4 / (5·24) = 0.8
    assert rank_correlation(np.arange(5), np.array([2, 1, 4, 3, 5])) == pytest.approx(0.8)
    # ties: y ranks 1.5, 1.5, 3, 4; Pearson of ranks = 0.9486832980505138
    assert rank_correlation(np.array([1, 2, 3, 4]), np.array([0, 0, 1, 2])) == pytest.approx(0.9486832980505138)


def test_rank_correlation_constant_and_shape() -> None:
    assert math.isnan(rank_correlation(np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)))
    with pytest.raises(InputError, match=r"shapes \(2, 2\) and \(4,\)"):
        rank_correlation(np.zeros((2, 2)), np.zeros(4))


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return create_net("odir_test").eval()


def test_groups_top_first(tiny: nn.Module) -> None:
    groups = randomization_groups(tiny)
    assert groups[0] == "classifier"
    assert groups[-1] == "encoder.conv_stem"
    assert groups.index("encoder.conv_head") < groups.index("encoder.blocks.0") < groups.index("encoder.bn1")
    assert "encoder.blocks.0" in groups and "encoder.blocks.0.0" not in groups


def test_cascade_randomises_cumulatively_and_leaves_the_model(tiny: nn.Module) -> None:
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    rng_state = torch.random.get_rng_state()
    steps = cascading_randomization(tiny, groups=["classifier", "fusion.3"])
    _, first = next(steps)
    assert not torch.equal(first.classifier.weight, tiny.classifier.weight)
    assert torch.equal(first.fusion[3].weight, tiny.fusion[3].weight)
    _, second = next(steps)
    assert not torch.equal(second.fusion[3].weight, tiny.fusion[3].weight)
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in before.items())
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # global RNG untouched


def test_randomize_resets_batchnorm_statistics() -> None:
    bn = nn.Sequential(nn.BatchNorm2d(4))
    bn[0].running_mean.fill_(3.0)
    randomize_groups_(bn, ["0"])
    assert torch.equal(bn[0].running_mean, torch.zeros(4))


def test_model_randomization_check_on_tiny_net(tiny: nn.Module) -> None:
    g = torch.Generator().manual_seed(5)
    left, right, age = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g), torch.zeros(2)

    def explain(net: nn.Module) -> list[np.ndarray]:
        return [
            gradcam_bilateral(net, left[i : i + 1], right[i : i + 1], age[i : i + 1], target_index=1, eye=eye)
            for i in range(2)
            for eye in ("left", "right")
        ]

    steps = model_randomization_check(tiny, explain, report=["classifier"])
    assert [s.group for s in steps] == ["classifier", "encoder.conv_stem"]  # the full randomisation always last
    for s in steps:
        assert s.n + s.n_constant == 4
        assert math.isnan(s.mean) or -1.0 <= s.mean <= 1.0
    assert steps[-1].n >= 2 and steps[-1].mean < 0.9  # Grad-CAM of a fully random net is another map
    assert steps[-1].step == len(randomization_groups(tiny))
    rows = steps_as_dicts(steps)
    assert set(rows[0]) == {"step", "group", "mean", "sd", "n", "n_constant"}


def test_identity_explainer_fails_the_check(tiny: nn.Module) -> None:
    """An 'explanation' that ignores the model (the image itself) keeps ρ = 1: what the check exists to catch."""
    image = np.random.default_rng(0).random((8, 8))
    steps = model_randomization_check(tiny, lambda _net: [image, image * 2], report=[])
    assert steps[-1].mean == pytest.approx(1.0)
    assert steps[-1].n == 2
