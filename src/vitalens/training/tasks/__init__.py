"""Training task plug-ins, registered by analyzer name; importing this package registers every task module."""

from __future__ import annotations

import importlib
import logging

from vitalens.training.tasks._base import (
    SYNTHETIC_MARKERS,
    DataBundle,
    TaskOptions,
    TrainingTask,
    detect_synthetic,
    get_task,
    get_task_class,
    is_task,
    list_tasks,
    register_task,
)

__all__ = [
    "SYNTHETIC_MARKERS",
    "DataBundle",
    "TaskOptions",
    "TrainingTask",
    "detect_synthetic",
    "get_task",
    "get_task_class",
    "is_task",
    "list_tasks",
    "register_task",
]

logger = logging.getLogger(__name__)

#: One module per task; a module whose own file is missing (a task not yet written) is skipped.
_TASK_MODULES = (
    "vitalens.training.tasks.fundus_odir",
    "vitalens.training.tasks.ecg_ptbxl",
    "vitalens.training.tasks.fundus_vessels",
)

for _module in _TASK_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        logger.debug("training task module %s not present", _module)
