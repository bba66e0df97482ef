"""The in-memory ECG every reader returns: signal in mV, leads × samples, with its sampling rate and lead names.

Why one record type: the model, the interval analyzer, the plot and the API all need the same three facts
(samples in physical units, sampling rate, lead order). Each reader converts its format's units and names
once, here at the boundary, so nothing downstream guesses.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vitalens.errors import InputError

__all__ = [
    "STANDARD_LEADS",
    "LIMB_DERIVED_LEADS",
    "EXTRA_LEADS",
    "ECGRecord",
    "normalise_lead_name",
    "select_known_leads",
]

logger = logging.getLogger(__name__)

#: The conventional 12-lead order (limb leads, augmented leads, precordial leads).
STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: Leads that are linear combinations of I and II (Einthoven's and Goldberger's equations).
LIMB_DERIVED_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")

#: Non-standard leads some formats carry (Frank orthogonal leads in PTB); readers drop them and say so in meta.
EXTRA_LEADS: frozenset[str] = frozenset({"VX", "VY", "VZ", "X", "Y", "Z"})

_LEAD_ALIASES: dict[str, str] = {
    # Roman numerals with the prefixes devices use: "DI" (Latin-American/European devices), "LEAD I", "MDC_ECG_LEAD_I"
    "I": "I",
    "II": "II",
    "III": "III",
    "DI": "I",
    "DII": "II",
    "DIII": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
    **{f"V{i}": f"V{i}" for i in range(1, 7)},
    **{f"C{i}": f"V{i}" for i in range(1, 7)},  # IEC chest-electrode naming
}

_PREFIXES = ("MDC_ECG_LEAD_", "LEAD_", "LEAD", "ECG_", "ECG")


def _canonical_key(name: str) -> str:
    key = re.sub(r"\(.*?\)", "", str(name))  # "Lead I (Einthoven)" → "Lead I "
    key = re.sub(r"[\s\-_]+", "_", key.strip()).strip("_").upper()
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix) :].lstrip("_")
            break
    return key.replace("_", "")


def normalise_lead_name(name: str) -> str:
    """Map a device's lead label to its standard name (``I``, ``II``, ``III``, ``aVR``…``aVF``, ``V1``–``V6``).

    Accepts the spellings found in real files: ``"avr"``/``"AVR"``, ``"DI"``, ``"Lead I (Einthoven)"`` (DICOM),
    ``"MDC_ECG_LEAD_AVF"`` (HL7 aECG), ``"V1 "``, ``"C1"`` (IEC).

    Args:
        name: the label as stored in the file.

    Returns:
        The standard lead name.

    Raises:
        InputError: the label is not a standard lead (the message names it and lists the standard leads).

    Example:
        >>> normalise_lead_name("avr"), normalise_lead_name("Lead II"), normalise_lead_name("MDC_ECG_LEAD_V3")
        ('aVR', 'II', 'V3')
    """
    key = _canonical_key(name)
    if key in _LEAD_ALIASES:
        return _LEAD_ALIASES[key]
    raise InputError(
        f"unknown ECG lead name {name!r}; expected one of {', '.join(STANDARD_LEADS)}"
        " (spellings such as 'avr', 'DI', 'Lead I', 'MDC_ECG_LEAD_I' are understood)",
        field="ecg",
    )


def select_known_leads(names: list[str] | tuple[str, ...]) -> tuple[list[int], list[str], list[str]]:
    """Normalise every label; keep standard leads, drop known extra leads (Frank X/Y/Z), reject unknown ones.

    Returns:
        ``(indices kept, their standard names, dropped original labels)``.

    Raises:
        InputError: an unknown label, or the same lead twice.
    """
    keep: list[int] = []
    out: list[str] = []
    dropped: list[str] = []
    for i, raw in enumerate(names):
        if _canonical_key(raw) in EXTRA_LEADS:
            dropped.append(str(raw))
            continue
        std = normalise_lead_name(raw)
        if std in out:
            raise InputError(f"ECG lead {std} appears twice (labels {names!r})", field="ecg")
        keep.append(i)
        out.append(std)
    return keep, out, dropped


@dataclass(frozen=True)
class ECGRecord:
    """A multi-lead ECG in physical units.

    Attributes:
        signal: float32 array ``(n_leads, n_samples)`` in millivolts, rows in ``leads`` order.
        fs_hz: sampling rate in Hz.
        leads: standard lead names, one per row.
        source_format: the reader that produced it (``wfdb``, ``dicom``, ``aecg``, ``muse``, ``csv``, ``npy``,
            ``npz``, ``mat``) or ``derived`` for records built in memory.
        meta: what the file said about the patient and the device: ``age_years``, ``sex`` (``"female"``/
            ``"male"``), ``device_measurements`` (``{"HR_bpm", "PR_ms", "QRS_ms", "QT_ms", "QTc_ms", ...}``
            as the recording device computed them), ``dropped_leads``, ``derived_leads``, ``notes``.
    """

    signal: np.ndarray
    fs_hz: float
    leads: tuple[str, ...]
    source_format: str = "derived"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sig = np.asarray(self.signal)
        if sig.ndim != 2:
            raise InputError(f"ECG signal must be 2-D (leads, samples); got shape {sig.shape}", field="ecg")
        if sig.shape[0] != len(self.leads):
            raise InputError(
                f"ECG signal has {sig.shape[0]} rows but {len(self.leads)} lead names {self.leads!r}", field="ecg"
            )
        if sig.dtype != np.float32:
            object.__setattr__(self, "signal", sig.astype(np.float32))
        object.__setattr__(self, "leads", tuple(self.leads))
        object.__setattr__(self, "fs_hz", float(self.fs_hz))

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    def duration_s(self) -> float:
        """Length of the recording in seconds (``n_samples / fs_hz``)."""
        return self.n_samples / self.fs_hz if self.fs_hz > 0 else float("nan")

    def lead(self, name: str) -> np.ndarray:
        """One lead's samples in mV (``name`` may be any accepted spelling)."""
        std = normalise_lead_name(name)
        if std not in self.leads:
            raise InputError(f"ECG has no lead {std}; it has {', '.join(self.leads)}", field="ecg")
        return self.signal[self.leads.index(std)]

    def to_standard12(self) -> ECGRecord:
        """The 12 standard leads in standard order, deriving limb leads from I and II when they are missing.

        III = II − I (Einthoven), aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2 (Goldberger). Derived
        leads are listed in ``meta["derived_leads"]``. A missing I/II (when a derivation is needed) or a
        missing chest lead cannot be derived and raises.

        Raises:
            InputError: naming every lead that is missing and cannot be derived.
        """
        have = {name: self.signal[i] for i, name in enumerate(self.leads)}
        derived: list[str] = []
        need_limb = [ld for ld in LIMB_DERIVED_LEADS if ld not in have]
        if need_limb and "I" in have and "II" in have:
            lead_i = have["I"].astype(np.float64)
            lead_ii = have["II"].astype(np.float64)
            formulas = {
                "III": lead_ii - lead_i,
                "aVR": -(lead_i + lead_ii) / 2.0,
                "aVL": lead_i - lead_ii / 2.0,
                "aVF": lead_ii - lead_i / 2.0,
            }
            for ld in need_limb:
                have[ld] = formulas[ld].astype(np.float32)
                derived.append(ld)
        missing = [ld for ld in STANDARD_LEADS if ld not in have]
        if missing:
            raise InputError(
                f"ECG is missing lead(s) {', '.join(missing)} (it has {', '.join(self.leads)}); "
                "only III, aVR, aVL and aVF can be derived, and only from I and II",
                field="ecg",
            )
        if derived:
            logger.info("derived leads %s from I and II (Einthoven/Goldberger)", ", ".join(derived))
        meta = dict(self.meta)
        if self.leads != STANDARD_LEADS:
            extra = [ld for ld in self.leads if ld not in STANDARD_LEADS]
            if extra:
                meta["dropped_leads"] = list(meta.get("dropped_leads", [])) + extra
        if derived:
            meta["derived_leads"] = list(meta.get("derived_leads", [])) + derived
            meta["notes"] = list(meta.get("notes", [])) + [
                f"{', '.join(derived)} derived from I and II (Einthoven: III = II - I; Goldberger: "
                "aVR = -(I+II)/2, aVL = I - II/2, aVF = II - I/2)"
            ]
        signal = np.stack([have[ld] for ld in STANDARD_LEADS]).astype(np.float32)
        return replace(self, signal=signal, leads=STANDARD_LEADS, meta=meta)

    def select(self, leads: tuple[str, ...] | list[str]) -> ECGRecord:
        """A record holding only ``leads`` (standard names), in that order."""
        wanted = [normalise_lead_name(ld) for ld in leads]
        missing = [ld for ld in wanted if ld not in self.leads]
        if missing:
            raise InputError(
                f"ECG is missing lead(s) {', '.join(missing)}; it has {', '.join(self.leads)}", field="ecg"
            )
        idx = [self.leads.index(ld) for ld in wanted]
        return replace(self, signal=self.signal[idx], leads=tuple(wanted))
