"""Save, verify and load model artifacts (``model.safetensors`` + ``card.json`` [+ ``model.onnx``]).

Why verify on load: a weight file swapped or truncated on disk, or an artifact of another analyzer placed in
the wrong folder, must be refused loudly rather than produce plausible-looking but wrong probabilities.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitalens.artifacts._card import CARD_FILE, ONNX_FILE, WEIGHTS_FILE, ModelCard
from vitalens.errors import ArtifactError

if TYPE_CHECKING:
    import torch

__all__ = ["sha256_file", "save_artifact", "verify_artifact", "load_model", "add_file_to_artifact"]

logger = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(folder: Path, model: torch.nn.Module, card: ModelCard) -> ModelCard:
    """Write ``model``'s weights as safetensors and the card (with the weights' sha256) to ``folder``.

    The weights are written to a temporary name and renamed, so a crash never leaves a half-written artifact.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"analyzer": card.analyzer, "name": card.name})
    tmp.replace(folder / WEIGHTS_FILE)
    files = dict(card.files)
    files[WEIGHTS_FILE] = sha256_file(folder / WEIGHTS_FILE)
    card = card.model_copy(update={"files": files})
    card.write(folder)
    logger.info("saved artifact %s (%s) to %s", card.name, card.analyzer, folder)
    return card


def add_file_to_artifact(folder: Path, filename: str) -> ModelCard:
    """Record the sha256 of an extra file (e.g. ``model.onnx``) in the artifact's card."""
    folder = Path(folder)
    card = ModelCard.read(folder)
    files = dict(card.files)
    files[filename] = sha256_file(folder / filename)
    card = card.model_copy(update={"files": files})
    card.write(folder)
    return card


def verify_artifact(folder: Path, *, expected_analyzer: str | None = None) -> ModelCard:
    """Read the card and check every listed file's sha256 and the analyzer name.

    Raises:
        ArtifactError: missing card or weights, hash mismatch, or an artifact made for another analyzer.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"model artifact folder {folder} does not exist")
    card = ModelCard.read(folder)
    if expected_analyzer is not None and card.analyzer != expected_analyzer:
        raise ArtifactError(
            f"artifact {folder} is for analyzer '{card.analyzer}', not '{expected_analyzer}'; refusing to load it"
        )
    if WEIGHTS_FILE not in card.files:
        raise ArtifactError(f"{folder / CARD_FILE} lists no sha256 for {WEIGHTS_FILE}")
    for name, expected in card.files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"artifact {folder} is missing {name} listed in its card")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"sha256 mismatch for {path}: card says {expected[:12]}…, file is {actual[:12]}…; "
                "the weights were changed or corrupted"
            )
    return card


def load_model(
    folder: Path, *, expected_analyzer: str | None = None, device: str = "cpu"
) -> tuple[torch.nn.Module, ModelCard]:
    """Verify an artifact, build its net from the card and load the weights (strict), in eval mode."""
    from safetensors.torch import load_file

    from vitalens.nets import create_net

    card = verify_artifact(folder, expected_analyzer=expected_analyzer)
    net = create_net(card.architecture.name, pretrained=False, **card.architecture.kwargs)
    state: dict[str, Any] = load_file(str(Path(folder) / WEIGHTS_FILE), device="cpu")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"weights in {folder} do not fit net '{card.architecture.name}': "
            f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}"
        )
    net.eval().to(device)
    return net, card


def onnx_path(folder: Path) -> Path | None:
    path = Path(folder) / ONNX_FILE
    return path if path.is_file() else None
