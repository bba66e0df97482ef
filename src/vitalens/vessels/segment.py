"""Run a trained vessel net over a whole pre-processed photograph (the same call in training, bench and analyzer).

Why one function: the validation split that chooses the threshold, the DRIVE bench and the analyzer must see the
net's probabilities computed identically (same channel, same padding, same flip averaging), or the card's
threshold would not mean what it says. The analyzer may pass an ONNX Runtime ``session`` on the artifact's verified
``model.onnx`` instead of running the net (same padding, same flip averaging: the graph pads and crops inside).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["net_vessel_probability"]

logger = logging.getLogger(__name__)


def net_vessel_probability(
    net: torch.nn.Module | None,
    channel: np.ndarray,
    *,
    device: str = "cpu",
    flip_average: bool = True,
    session: Any | None = None,
) -> np.ndarray:
    """Per-pixel vessel probability of ``net`` on a ``vessel_channel`` image, float32 ``(H, W)`` in [0, 1].

    Args:
        net: a 1-channel-in, 1-logit-out dense net (``vessel_unet_*``); put in eval mode here.
        channel: the z-scored CLAHE green channel (:func:`vitalens.vessels.preprocess.vessel_channel`).
        device: torch device.
        flip_average: average the probabilities of the image and its horizontal mirror (test-time augmentation;
            vessels have no preferred handedness).
        session: an onnxruntime session of the net's exported graph (input ``(B, 1, H, W)``, any H and W); when
            given it runs instead of ``net``, on the same views with the same sigmoid and averaging.
    """
    image = np.ascontiguousarray(channel, dtype=np.float32)[None, None]
    views = [image, np.ascontiguousarray(image[..., ::-1])] if flip_average else [image]
    if session is not None:
        name = session.get_inputs()[0].name
        logits = [np.asarray(session.run(None, {name: v})[0]) for v in views]
    elif net is None:
        raise ValueError("net_vessel_probability needs a net or an onnxruntime session")
    else:
        import torch

        was_training = net.training
        net.eval()
        with torch.inference_mode():
            logits = [net(torch.from_numpy(v).to(device)).float().cpu().numpy() for v in views]
        if was_training:
            net.train()
    probs = [1.0 / (1.0 + np.exp(-z[0, 0].astype(np.float64))) for z in logits]
    prob = 0.5 * (probs[0] + probs[1][:, ::-1]) if flip_average else probs[0]
    return np.asarray(prob, dtype=np.float32)
