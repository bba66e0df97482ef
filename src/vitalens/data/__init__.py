"""Dataset adapters (one per public dataset: reads and writes its published layout, with a synthetic twin),
patient-level splits and transforms.

Why lazy torch: the adapters and splits are plain numpy/pandas and are used by tools that never train (the
CLI's dataset summary, the benches); the torch-backed names (transforms, ``BilateralOdirDataset``) are
imported on first use through ``__getattr__`` so ``import vitalens.data`` stays light.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from vitalens.data._adapters import (
    ADAPTERS,
    DatasetAdapter,
    DatasetWriter,
    ExportInput,
    ExportRecord,
    SkipRecord,
    get_adapter,
    is_adapter,
    list_adapters,
    register_adapter,
)
from vitalens.data.odir import (
    ODIR_LABEL_NAMES,
    ODIR_LABELS,
    OdirDataset,
    OdirRecord,
    find_odir_image_dir,
    find_odir_sheet,
    read_odir_sheet,
)
from vitalens.data.splits import patient_kfold, patient_split, patient_targets

logger = logging.getLogger(__name__)

_LAZY = {
    "CropFundusBorder": "vitalens.data.transforms",
    "ResizeSquare": "vitalens.data.transforms",
    "ToNormalizedTensor": "vitalens.data.transforms",
    "FundusPreprocess": "vitalens.data.transforms",
    "FundusAugment": "vitalens.data.transforms",
    "FundusGeometry": "vitalens.data.transforms",
    "IMAGENET_MEAN": "vitalens.data.transforms",
    "IMAGENET_STD": "vitalens.data.transforms",
    "BilateralOdirDataset": "vitalens.data.torch_odir",
    "age_stats": "vitalens.data.torch_odir",
}

__all__ = [
    "ADAPTERS",
    "DatasetAdapter",
    "DatasetWriter",
    "ExportInput",
    "ExportRecord",
    "SkipRecord",
    "get_adapter",
    "is_adapter",
    "list_adapters",
    "register_adapter",
    "ODIR_LABELS",
    "ODIR_LABEL_NAMES",
    "OdirDataset",
    "OdirRecord",
    "find_odir_image_dir",
    "find_odir_sheet",
    "read_odir_sheet",
    "patient_split",
    "patient_kfold",
    "patient_targets",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vitalens.data' has no attribute {name!r}")
