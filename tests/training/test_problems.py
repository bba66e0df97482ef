"""Multi-class and ordinal heads: exact link values, losses, fitting on validation, metrics, derived findings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitalens.artifacts import CalibrationSpec, ModelCard, OutputSpec
from vitalens.artifacts.outputs import (
    corn_probabilities,
    cumulative_logit_probabilities,
    derived_probability,
    expected_grade,
    n_outputs_for,
    output_probabilities,
    softmax,
)
from vitalens.errors import InputError
from vitalens.training.multiclass_metrics import multiclass_metrics, quadratic_kappa, top_label_ece
from vitalens.training.problems import (
    CornLoss,
    GradeRegressionLoss,
    SoftmaxCrossEntropy,
    class_weights,
    fit_output,
    make_problem,
    torch_class_probabilities,
)
from vitalens.training.recipe import LossSection


def test_corn_link_exact() -> None:
    # σ(0) = 0.5: P(y > 0) = 0.5, P(y > 1) = 0.25 → [0.5, 0.25, 0.25].
    np.testing.assert_allclose(corn_probabilities(np.zeros((1, 2))), [[0.5, 0.25, 0.25]])
    p = corn_probabilities(np.array([[10.0, -10.0, 3.0]]))
    assert p.shape == (1, 4) and p[0].sum() == pytest.approx(1.0) and p[0].argmax() == 1


def test_cumulative_logit_exact_and_ordered_cutpoints() -> None:
    s1, sm1 = 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(1.0))  # σ(1) = 0.7311, σ(−1) = 0.2689
    p = cumulative_logit_probabilities(np.array([0.0]), 1.0, [-1.0, 1.0])
    np.testing.assert_allclose(p, [[1 - s1, s1 - sm1, sm1]])
    with pytest.raises(ValueError, match="increasing"):
        cumulative_logit_probabilities(np.array([0.0]), 1.0, [1.0, -1.0])


def test_output_probabilities_dispatch_and_temperature() -> None:
    z = np.array([[2.0, 0.0, -2.0]])
    spec = OutputSpec(problem="multiclass", head="softmax")
    np.testing.assert_allclose(output_probabilities(spec, CalibrationSpec(), z), softmax(z))
    cal = CalibrationSpec(method="temperature", params={"temperature": 2.0})
    np.testing.assert_allclose(output_probabilities(spec, cal, z), softmax(z / 2))
    with pytest.raises(ValueError, match="cutpoints"):
        output_probabilities(OutputSpec(problem="ordinal", head="regression"), CalibrationSpec(), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        OutputSpec(problem="multiclass", head="corn")
    assert [n_outputs_for(h, 5) for h in ("sigmoid", "softmax", "corn", "regression")] == [5, 5, 4, 1]


def test_derived_probability_and_expected_grade() -> None:
    p = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert derived_probability(p, ["0", "1", "2", "3", "4"], ["2", "3", "4"])[0] == pytest.approx(0.7)
    assert expected_grade(p)[0] == pytest.approx(0.2 + 0.6 + 0.75 + 0.6)


def test_class_weights_exact() -> None:
    y = np.eye(2)[[0, 0, 0, 1]]
    np.testing.assert_allclose(class_weights(y), [4 / 6, 2.0])  # N / (K · n_k)
    np.testing.assert_allclose(class_weights(np.eye(3)[[0, 1]]), [2 / 3, 2 / 3, 1.0])  # absent class → 1


def test_make_problem_checks_loss_against_kind() -> None:
    assert make_problem("ordinal", "corn", 5).n_outputs == 4
    assert (
        make_problem("multiclass", "ce", 4).n_outputs == 4 and make_problem("ordinal", "regression", 5).n_outputs == 1
    )
    with pytest.raises(InputError, match="does not fit a multiclass"):
        make_problem("multiclass", "corn", 4)
    with pytest.raises(InputError, match="does not fit a multilabel"):
        make_problem("multilabel", "ce", 4)


def test_losses_on_one_hot_targets() -> None:
    target = torch.eye(3)[[0, 2]]
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    ce = SoftmaxCrossEntropy(None, 0.0)(logits, target)
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))))
    assert float(CornLoss(3)(torch.zeros(2, 2), target)) == pytest.approx(np.log(2.0), rel=1e-5)
    assert float(GradeRegressionLoss()(torch.tensor([[0.0], [2.0]]), target)) == pytest.approx(0.0)
    p = torch_class_probabilities(make_problem("ordinal", "regression", 3), torch.tensor([[0.0], [2.0]]))
    assert p.argmax(1).tolist() == [0, 2]
    problem = make_problem("multiclass", "ce", 2)
    loss = problem.build_loss(LossSection(name="ce", class_weight="auto", label_smoothing=0.1), np.eye(2)[[0, 0, 1]])
    assert isinstance(loss, SoftmaxCrossEntropy) and loss.weight is not None


def test_fit_output_recovers_temperature_and_cutpoints() -> None:
    rng = np.random.default_rng(0)
    z_true = rng.normal(0, 2, (4000, 3))
    y_idx = np.array([rng.choice(3, p=p) for p in softmax(z_true)])
    y = np.eye(3)[y_idx]
    cal, out = fit_output(make_problem("multiclass", "ce", 3), "temperature", z_true * 3.0, y)
    assert cal.params["temperature"] == pytest.approx(3.0, rel=0.1)
    # Regression: scores from a cumulative-logit model with scale 2 and cut-points (−1, 1).
    s = rng.normal(0, 1.5, 5000)
    probs = cumulative_logit_probabilities(s, 2.0, [-1.0, 1.0])
    yi = np.array([rng.choice(3, p=p) for p in probs])
    cal, out = fit_output(make_problem("ordinal", "regression", 3), "temperature", s[:, None], np.eye(3)[yi])
    assert out.params["scale"] == pytest.approx(2.0, rel=0.15)
    np.testing.assert_allclose(out.params["cutpoints"], [-1.0, 1.0], atol=0.2)


def test_quadratic_kappa_and_metrics_exact() -> None:
    # Hand-computed: O has one (1→2) error; Σ w·O = 0.25, Σ w·E = 1.25 → κ = 1 − 0.2 = 0.8.
    assert quadratic_kappa(np.array([0, 1, 2]), np.array([0, 2, 2]), 3) == pytest.approx(0.8)
    y = np.eye(3)[[0, 1, 2]]
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.3, 0.6], [0.1, 0.1, 0.8]])
    m = multiclass_metrics(y, probs, ["0", "1", "2"], ordinal=True)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["quadratic_kappa"] == pytest.approx(0.8)
    assert m["per_class"]["2"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert m["mean_abs_error"] == pytest.approx(1 / 3)
    # Top-label ECE: confidences 0.9 (right) and 0.6 (wrong) → ½·0.1 + ½·0.6 = 0.35.
    assert top_label_ece(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1])) == pytest.approx(0.35)


def test_model_card_output_defaults_to_multilabel() -> None:
    fields = ModelCard.model_fields
    assert fields["output"].default_factory() == OutputSpec(problem="multilabel", head="sigmoid")
    assert fields["derived"].default_factory() == []
