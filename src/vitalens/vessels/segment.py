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
            given it runs instead of ``net`` (the image and its mirror as one batch of 2).
    """
    if session is not None:
        image = np.ascontiguousarray(channel, dtype=np.float32)[None, None]
        batch = np.concatenate([image, image[..., ::-1]]) if flip_average else image
        logits = np.asarray(session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(batch)})[0])
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return np.asarray(0.5 * (p[0, 0] + p[1, 0, :, ::-1]) if flip_average else p[0, 0], dtype=np.float32)
    if net is None:
        raise ValueError("net_vessel_probability needs a net or an onnxruntime session")
    import torch

    was_training = net.training
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(channel, dtype=np.float32))[None, None].to(device)
    with torch.inference_mode():
        prob = torch.sigmoid(net(x))
        if flip_average:
            prob = 0.5 * (prob + torch.sigmoid(net(x.flip(-1))).flip(-1))
    if was_training:
        net.train()
    return prob[0, 0].float().cpu().numpy()
