"""Threshold choice on hand-computed ROC points."""

from __future__ import annotations

import pytest

from vitalens.errors import UnknownNameError
from vitalens.risk import choose_threshold, f1_threshold, target_sensitivity_threshold, youden_threshold


def test_youden_picks_max_j_and_the_higher_threshold_on_ties() -> None:
    # t=0.8: sens .5 spec 1 (J .5); t=0.4: J 0; t=0.35: sens 1 spec .5 (J .5, tie → keep 0.8); t=0.1: J 0
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8


def test_youden_perfect_separation() -> None:
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == 0.7


def test_youden_single_class_returns_half() -> None:
    assert youden_threshold([1, 1], [0.2, 0.9]) == 0.5


@pytest.mark.parametrize(("target", "expected"), [(0.5, 0.8), (0.75, 0.7), (0.95, 0.6), (1.0, 0.6)])
def test_target_sensitivity(target: float, expected: float) -> None:
    y = [1, 1, 1, 1, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.5]
    t = target_sensitivity_threshold(y, s, target)
    assert t == expected
    sens = sum(1 for yi, si in zip(y, s, strict=True) if yi and si >= t) / 4
    assert sens >= target


def test_target_sensitivity_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target sensitivity"):
        target_sensitivity_threshold([0, 1], [0.1, 0.9], 0.0)


def test_f1_threshold() -> None:
    # t=.9: F1 2/3; t=.5: F1 1.0; t=.2: F1 0.8
    assert f1_threshold([0, 1, 1], [0.2, 0.5, 0.9]) == 0.5


def test_choose_threshold_dispatch_and_unknown_name() -> None:
    assert choose_threshold([0, 1], [0.1, 0.9], "fixed", value=0.3) == 0.3
    assert choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], "youden") == 0.7
    with pytest.raises(UnknownNameError, match="Did you mean 'youden'"):
        choose_threshold([0, 1], [0.1, 0.9], "youdn")


def test_nan_scores_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        youden_threshold([0, 1], [float("nan"), 0.5])
