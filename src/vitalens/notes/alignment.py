"""Optional image–text alignment plug-ins (a biomedical vision–language model scoring a study image against text).

Why only an interface: no biomedical vision–language weights can be bundled or fetched here, and an alignment score
from a model nobody supplied would be a number that was not computed. So vitalens ships the contract and one adapter
for OpenCLIP-format checkpoints (e.g. BiomedCLIP) that the deployer supplies; with none configured, alignment is
reported as unavailable, never faked.

Configure with ``VITALENS_ALIGNER`` (a registered name, e.g. ``open_clip``) and ``VITALENS_ALIGNER_WEIGHTS`` (a folder
holding the checkpoint and an ``aligner.json`` naming its architecture).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vitalens._naming import unknown_name_error

__all__ = [
    "AlignerUnavailable",
    "ImageTextAligner",
    "register_aligner",
    "unregister_aligner",
    "list_aligners",
    "load_aligner",
]

logger = logging.getLogger(__name__)


class AlignerUnavailable(RuntimeError):
    """No aligner is configured, its weights are missing, or its library is not installed."""


@runtime_checkable
class ImageTextAligner(Protocol):
    """Scores how well each text describes an image."""

    name: str

    def score(self, image: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarities, shape ``(len(texts),)``, for an RGB ``uint8`` image ``(H, W, 3)``."""
        ...


AlignerFactory = Callable[[Path], ImageTextAligner]
_ALIGNERS: dict[str, AlignerFactory] = {}


def register_aligner(name: str) -> Callable[[AlignerFactory], AlignerFactory]:
    """Register a factory ``weights_folder -> ImageTextAligner`` under ``name`` (a duplicate is an error)."""

    def decorator(factory: AlignerFactory) -> AlignerFactory:
        if name in _ALIGNERS:
            raise ValueError(f"aligner '{name}' is already registered")
        _ALIGNERS[name] = factory
        return factory

    return decorator


def unregister_aligner(name: str) -> None:
    _ALIGNERS.pop(name, None)


def list_aligners() -> list[str]:
    return sorted(_ALIGNERS)


def load_aligner(name: str | None = None, weights: Path | str | None = None) -> ImageTextAligner:
    """The configured aligner on user-supplied weights.

    Raises:
        AlignerUnavailable: nothing configured, or the weights folder does not exist.
        UnknownNameError: ``name`` is not registered (lists the registered ones).
    """
    name = name or os.environ.get("VITALENS_ALIGNER")
    weights = weights or os.environ.get("VITALENS_ALIGNER_WEIGHTS")
    if not name:
        raise AlignerUnavailable(
            "image–text alignment needs a vision–language model with user-supplied weights "
            "(VITALENS_ALIGNER and VITALENS_ALIGNER_WEIGHTS); none is configured, so no alignment is reported"
        )
    if name not in _ALIGNERS:
        raise unknown_name_error("aligner", name, _ALIGNERS)
    if not weights or not Path(weights).is_dir():
        raise AlignerUnavailable(f"aligner '{name}' needs a weights folder; {weights or '(none)'} does not exist")
    return _ALIGNERS[name](Path(weights))


@register_aligner("open_clip")
def _open_clip(weights: Path) -> ImageTextAligner:
    """OpenCLIP checkpoint: ``aligner.json`` gives ``{"architecture": ..., "checkpoint": ..., "tokenizer": ...}``."""
    try:
        import open_clip
        import torch
        from PIL import Image
    except ImportError as exc:
        raise AlignerUnavailable("the open_clip aligner needs the open_clip_torch package") from exc
    config_path = weights / "aligner.json"
    if not config_path.is_file():
        raise AlignerUnavailable(f"{config_path} is missing (it names the architecture and checkpoint file)")
    config = json.loads(config_path.read_text())
    model, _, preprocess = open_clip.create_model_and_transforms(
        config["architecture"], pretrained=str(weights / config["checkpoint"])
    )
    tokenizer = open_clip.get_tokenizer(config.get("tokenizer", config["architecture"]))
    model.eval()

    class _Aligner:
        name = f"open_clip:{config['architecture']}"

        def score(self, image: np.ndarray, texts: Sequence[str]) -> np.ndarray:
            with torch.no_grad():
                img = model.encode_image(preprocess(Image.fromarray(image)).unsqueeze(0))
                txt = model.encode_text(tokenizer(list(texts)))
                img = img / img.norm(dim=-1, keepdim=True)
                txt = txt / txt.norm(dim=-1, keepdim=True)
                out: Any = (txt @ img.T).squeeze(-1).cpu().numpy()
            return np.asarray(out, dtype=np.float32)

    return _Aligner()
