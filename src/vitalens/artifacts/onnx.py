"""ONNX export of a model artifact, verified against PyTorch with onnxruntime before it is recorded.

Why verify: an exported graph that silently differs from the PyTorch net (an unsupported op folded wrongly, a
dropout left in training mode) would give different probabilities in a deployment than the card's metrics
promise; the export is only written into the artifact (and its sha256 into the card) when onnxruntime's outputs
match PyTorch's within ``atol`` (relative beyond |logit| 1, see :func:`onnx_parity`) on random inputs of two batch
sizes (and, for a graph with free image sides, two image sizes).

What the graph takes comes from :func:`onnx_signature`: the net's own ``onnx_signature(card)`` where it declares
one (several named inputs, free axes besides the batch; :mod:`vitalens.nets._onnx`), else one input per embedding
for a head on frozen encoders' embeddings, else the single ``input`` sized by the card.

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
from vitalens.nets._onnx import OnnxInput, OnnxSignature

__all__ = ["export_onnx", "example_input_shape", "example_inputs", "onnx_parity", "onnx_signature"]

logger = logging.getLogger(__name__)


def example_input_shape(card: ModelCard, batch: int = 1) -> tuple[int, ...]:
    """The net's input shape from the card: ``(B, leads, fs·duration)`` for signals, ``(B, C, H, W)`` for images.

    Raises:
        ArtifactError: the card does not say the input size, or the net takes several inputs (fundus pairs: their
            nets declare them, see :func:`onnx_signature`).
    """
    spec = card.input
    if spec.modality == "ecg":
        if spec.fs_hz is None:
            raise ArtifactError(f"card {card.name} has no fs_hz; cannot size an ECG input")
        return (batch, spec.channels, int(round(spec.fs_hz * (spec.duration_s or 10.0))))
    if spec.extra.get("inputs") and len(spec.extra["inputs"]) > 1:
        raise ArtifactError(
            f"{card.name} takes several inputs {spec.extra['inputs']}; its net declares them (onnx_signature)"
        )
    if spec.size is None:
        raise ArtifactError(f"card {card.name} has no input size; cannot size an image input")
    return (batch, spec.channels, *spec.size)


def onnx_signature(card: ModelCard, net: object | None = None) -> OnnxSignature:
    """What the exported graph of ``net`` (built from ``card``) takes: named inputs and their free axes.

    The net's own ``onnx_signature(card)`` when it has one (the bilateral fundus net: both eyes and the age; the
    vessel U-Net: one image of any size); else, for a head on frozen encoders' embeddings (the card's
    ``input.extra.embeddings``: name → width, e.g. retina.fusion's ``{"fundus": 1280, "oct": 1280}``), one
    ``(B, width)`` input per embedding in the card's order (the order the task's forward passes them); else one
    ``input`` sized by :func:`example_input_shape`. The batch axis is always free.
    """
    declared = getattr(net, "onnx_signature", None)
    if callable(declared):
        signature = declared(card)
        if not isinstance(signature, OnnxSignature):
            raise ArtifactError(f"{type(net).__name__}.onnx_signature returned {type(signature).__name__}")
        return signature
    embeddings = card.input.extra.get("embeddings")
    if isinstance(embeddings, dict) and embeddings:
        return OnnxSignature(inputs=tuple(OnnxInput(str(n), (1, int(w))) for n, w in embeddings.items()))
    return OnnxSignature(inputs=(OnnxInput("input", example_input_shape(card, 1)),))


def example_inputs(
    card: ModelCard, batch: int = 1, net: object | None = None, *, probe: int = 0
) -> dict[str, tuple[int, ...]]:
    """Input name → shape of the net's forward for ``batch`` items, in argument order (:func:`onnx_signature`).

    ``probe`` > 0 moves free image sides off the example size (:meth:`OnnxInput.sized`).
    """
    return onnx_signature(card, net).shapes(batch, probe)


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

    The inputs, their names and free axes are the net's :func:`onnx_signature` (a single-input net: one input
    ``input``; a head on frozen encoders' embeddings: one per embedding, named as in the card; the bilateral fundus
    net: both eyes and the age; the vessel U-Net: one image whose height and width are free too). Parity is checked
    at batch 1 on the example shape and at batch 4 with every free image side moved off it.

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
    signature = onnx_signature(card, net)
    shapes = signature.shapes(1)
    out = folder / ONNX_FILE
    tmp = folder / (ONNX_FILE + ".tmp")
    try:
        torch.onnx.export(
            net,
            tuple(torch.zeros(s) for s in shapes.values()),
            str(tmp),
            input_names=list(shapes),
            output_names=["logits"],
            dynamic_axes=signature.dynamic_axes(),
            opset_version=opset,
            dynamo=False,
        )
    except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one clear artifact error
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"ONNX export of {card.name} failed: {exc}") from exc
    diffs = [onnx_parity(net, tmp, signature.shapes(b, probe), seed=b) for b, probe in ((1, 0), (4, 1))]
    if max(diffs) > atol:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"ONNX outputs differ from PyTorch by {max(diffs):.2e} > {atol:g}; not written")
    tmp.replace(out)
    add_file_to_artifact(folder, ONNX_FILE)
    logger.info("exported %s to %s (max |diff| %.2e)", card.name, out, max(diffs))
    return out
