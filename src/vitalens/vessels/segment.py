"""Run a trained vessel net over a whole pre-processed photograph (the same call in training, bench and analyzer).

Why one function: the validation split that chooses the threshold, the DRIVE bench and the analyzer must see the
net's probabilities computed identically (same channel, same padding, same flip averaging), or the card's
threshold would not mean what it says.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["net_vessel_probability"]

logger = logging.getLogger(__name__)


def net_vessel_probability(
    net: torch.nn.Module, channel: np.ndarray, *, device: str = "cpu", flip_average: bool = True
) -> np.ndarray:
    """Per-pixel vessel probability of ``net`` on a ``vessel_channel`` image, float32 ``(H, W)`` in [0, 1].

    Args:
        net: a 1-channel-in, 1-logit-out dense net (``vessel_unet_*``); put in eval mode here.
        channel: the z-scored CLAHE green channel (:func:`vitalens.vessels.preprocess.vessel_channel`).
        device: torch device.
        flip_average: average the probabilities of the image and its horizontal mirror (test-time augmentation;
            vessels have no preferred handedness).
    """
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
