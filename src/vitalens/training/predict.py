"""Predicting a whole dataset split with a task's net: raw logits, targets and per-item identifiers.

Why a helper of its own: training (threshold choice, calibration, test metrics), ``vitalens evaluate`` and the
benches all need exactly the same pass over a split, in eval mode, without augmentation or shuffling.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from vitalens.training.tasks import TrainingTask

__all__ = ["predict_dataset"]

logger = logging.getLogger(__name__)


def predict_dataset(
    net: torch.nn.Module,
    task: TrainingTask,
    dataset: Any,
    device: str | torch.device = "cpu",
    *,
    batch_size: int = 32,
    num_workers: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]:
    """Run ``net`` over ``dataset`` in order.

    Args:
        net: the network (put in eval mode here, and left there).
        task: the task that knows how to run a batch.
        dataset: a torch dataset of the task's items.
        device: where to run.
        batch_size: items per forward pass.
        num_workers: DataLoader workers.

    Returns:
        ``(logits (N, L) float64, targets (N, L) int, meta)`` where ``meta`` maps e.g. ``patient_id`` to a list.
    """
    from lightning.fabric.utilities.apply_func import move_data_to_device
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=task.collate)
    net.eval().to(device)
    logits: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    meta: dict[str, list[Any]] = {}
    with torch.inference_mode():
        for batch in loader:
            batch = move_data_to_device(batch, device)
            logits.append(task.forward(net, batch).float().cpu().numpy())
            targets.append(task.targets(batch).cpu().numpy())
            for key, values in task.batch_meta(batch).items():
                meta.setdefault(key, []).extend(values)
    n_labels = len(task.labels)
    if not logits:
        return np.zeros((0, n_labels)), np.zeros((0, n_labels), dtype=int), meta
    return (
        np.concatenate(logits).astype(np.float64),
        np.rint(np.concatenate(targets)).astype(int),
        meta,
    )
