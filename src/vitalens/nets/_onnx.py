"""What a net's ONNX graph takes: named inputs, their example shapes and which axes stay free at run time.

Why the net declares it: the exporter (:func:`vitalens.artifacts.onnx.export_onnx`), its parity check and the
inference bench must feed every net the inputs its ``forward`` takes, in order; a net with several inputs (both
eyes and the age of the bilateral fundus net) or a fully-convolutional net that takes any image size (the vessel
U-Net) knows that better than a card field does. A net says so with a method ``onnx_signature(card) ->
OnnxSignature``; nets without one get the single ``input`` sized by the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["OnnxInput", "OnnxSignature"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxInput:
    """One named input of the graph.

    Attributes:
        name: the graph input's name (the net's ``forward`` argument it feeds, in order).
        shape: the example shape, batch axis first (its value is replaced by the batch asked for).
        dynamic: axes free at run time besides the batch (axis 0 is always free), e.g. ``(2, 3)`` for H and W.
    """

    name: str
    shape: tuple[int, ...]
    dynamic: tuple[int, ...] = ()

    @property
    def axes(self) -> dict[int, str]:
        """``dynamic_axes`` entry of the exporter: axis → symbolic name."""
        return {0: "batch", **{a: f"{self.name}_dim{a}" for a in self.dynamic if a != 0}}

    def sized(self, batch: int, probe: int = 0) -> tuple[int, ...]:
        """The shape for ``batch`` items; ``probe`` > 0 moves every free non-batch axis off the example size.

        Why probe: a parity check at the export size alone would pass a graph that baked that size in; probe 1
        adds 2 + axis to each free axis (odd and even, not multiples of a U-Net's padding step).
        """
        return (batch, *(s + probe * (2 + a) if a in self.dynamic else s for a, s in enumerate(self.shape) if a))


@dataclass(frozen=True)
class OnnxSignature:
    """The graph's inputs (in ``forward`` order) and the free axes of its one output ``logits``."""

    inputs: tuple[OnnxInput, ...]
    output_dynamic: tuple[int, ...] = field(default=())

    def shapes(self, batch: int = 1, probe: int = 0) -> dict[str, tuple[int, ...]]:
        """Input name → shape for ``batch`` items (see :meth:`OnnxInput.sized`)."""
        return {i.name: i.sized(batch, probe) for i in self.inputs}

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The exporter's ``dynamic_axes``: every input's free axes and the output's."""
        out = {0: "batch", **{a: f"logits_dim{a}" for a in self.output_dynamic if a != 0}}
        return {**{i.name: i.axes for i in self.inputs}, "logits": out}
