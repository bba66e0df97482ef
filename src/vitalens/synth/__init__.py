"""Synthetic twins of the public datasets, each written in its dataset's published layout.

Why: tests, CI and the offline demo need data the real adapters read unchanged, without shipping binary data or
patient images in the repository (MONAI's "no binary test data" rule).
"""

from __future__ import annotations

import logging

from vitalens.synth.aptos import write_aptos_synth
from vitalens.synth.drive import write_drive_synth
from vitalens.synth.medmnist import write_medmnist_synth
from vitalens.synth.oct import write_kermany_synth, write_octc8_synth
from vitalens.synth.odir import write_odir_synth

__all__ = [
    "write_odir_synth",
    "write_aptos_synth",
    "write_drive_synth",
    "write_kermany_synth",
    "write_octc8_synth",
    "write_medmnist_synth",
]

logger = logging.getLogger(__name__)
