"""Training task plug-ins, registered by analyzer name; found without a module list (every public module here and
``vitalens.tasks`` entry points of installed plug-ins are imported on first lookup)."""

from __future__ import annotations

from vitalens.training.tasks._base import (
    SYNTHETIC_MARKERS,
    TASKS,
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
    "TASKS",
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
