"""ONNX export of a model artifact, verified against PyTorch with onnxruntime before it is recorded.

Why verify: an exported graph that silently differs from the PyTorch net (an unsupported op folded wrongly, a
dropout left in training mode) would give different probabilities in a deployment than the card's metrics
promise; the export is only written into the artifact (and its sha256 into the card) when onnxruntime's outputs
match PyTorch's within ``atol`` (relative beyond |logit| 1, see :func:`onnx_parity`) on random inputs of two batch
sizes.

Example:
    >>> export_onnx(Path("models/ecg-ptbxl"))        # doctest: +SKIP
    PosixPath('models/ecg-ptbxl/model.onnx')
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vitalens.artifacts._card import ONNX_FILE, ModelCard
from vitalens.artifacts._io import add_file_to_artifact, load_model
from vitalens.errors import ArtifactError

__all__ = ["export_onnx", "example_input_shape", "example_inputs", "onnx_parity"]

logger = logging.getLogger(__name__)


def example_input_shape(card: ModelCard, batch: int = 1) -> tuple[int, ...]:
    """The net's input shape from the card: ``(B, leads, fs·duration)`` for signals, ``(B, C, H, W)`` for images.

    Raises:
        ArtifactError: the card does not say the input size, or the net takes several inputs (fundus pairs).
    """
    spec = card.input
    if spec.modality == "ecg":
        if spec.fs_hz is None:
            raise ArtifactError(f"card {card.name} has no fs_hz; cannot size an ECG input")
        return (batch, spec.channels, int(round(spec.fs_hz * (spec.duration_s or 10.0))))
    if spec.extra.get("inputs") and len(spec.extra["inputs"]) > 1:
        raise ArtifactError(f"{card.name} takes several inputs {spec.extra['inputs']}; ONNX export supports one")
    if spec.size is None:
        raise ArtifactError(f"card {card.name} has no input size; cannot size an image input")
    return (batch, spec.channels, *spec.size)


def example_inputs(card: ModelCard, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Input name → shape of the net's forward, in argument order.

    One input (``input``) sized by :func:`example_input_shape`, or, for a head on frozen encoders' embeddings (the
    card's ``input.extra.embeddings``: name → width, e.g. retina.fusion's ``{"fundus": 1280, "oct": 1280}``), one
    ``(B, width)`` input per embedding, in the card's order (the order the task's forward passes them).
    """
    embeddings = card.input.extra.get("embeddings")
    if isinstance(embeddings, dict) and embeddings:
        return {str(name): (batch, int(width)) for name, width in embeddings.items()}
    return {"input": example_input_shape(card, batch)}


def onnx_parity(
    model: object, onnx_file: Path, shape: tuple[int, ...] | dict[str, tuple[int, ...]], *, seed: int = 0
) -> float:
    """Max |PyTorch − onnxruntime| / max(1, |PyTorch|) over the outputs for seeded random inputs (one ``shape``, or
    name → shape): absolute for logits of ordinary size, relative beyond 1.

    Why relative beyond 1: random N(0, 1) inputs are far outside what a head on standardised embeddings was fitted
    on (a near-constant feature has a standard deviation of 1e-6), so its logits reach 1e4 and float32 rounding alone
    differs by 1e-2 there; the relative error still catches a wrong graph.
    """
    import onnxruntime as ort
    import torch

    shapes = shape if isinstance(shape, dict) else {"": shape}
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes.values()]
    with torch.no_grad():
        expected = model(*(torch.from_numpy(x) for x in xs)).float().numpy()  # type: ignore[operator]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    actual = session.run(None, {inp.name: x for inp, x in zip(session.get_inputs(), xs, strict=True)})[0]
    return float((np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))).max())


def export_onnx(folder: Path, *, opset: int = 17, atol: float = 1e-4) -> Path:
    """Export the artifact in ``folder`` to ``folder/model.onnx`` (dynamic batch), verify it, record its sha256.

    A single-input net gets one input ``input``; a head on frozen encoders' embeddings one input per embedding,
    named as in the card (:func:`example_inputs`).

    Args:
        folder: a model artifact (weights + card).
        opset: ONNX opset.
        atol: the largest accepted |PyTorch − onnxruntime| difference on the logits (relative beyond |logit| 1).

    Raises:
        ArtifactError: the net cannot be sized or exported, or onnxruntime disagrees beyond ``atol`` (the file is
            then removed).
    """
    import torch

    folder = Path(folder)
    net, card = load_model(folder, device="cpu")
    net.eval()
    shapes = example_inputs(card, batch=1)
    out = folder / ONNX_FILE
    tmp = folder / (ONNX_FILE + ".tmp")
    try:
        torch.onnx.export(
            net,
            tuple(torch.zeros(s) for s in shapes.values()),
            str(tmp),
            input_names=list(shapes),
            output_names=["logits"],
            dynamic_axes={**{name: {0: "batch"} for name in shapes}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one clear artifact error
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"ONNX export of {card.name} failed: {exc}") from exc
    diffs = [onnx_parity(net, tmp, {n: (b, *s[1:]) for n, s in shapes.items()}, seed=b) for b in (1, 4)]
    if max(diffs) > atol:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"ONNX outputs differ from PyTorch by {max(diffs):.2e} > {atol:g}; not written")
    tmp.replace(out)
    add_file_to_artifact(folder, ONNX_FILE)
    logger.info("exported %s to %s (max |diff| %.2e)", card.name, out, max(diffs))
    return out
