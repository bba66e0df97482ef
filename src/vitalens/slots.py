"""Input slots: the named inputs a study can hold (``fundus_left``, ``ecg``, ``age``, a plug-in's ``notes``...).

Why a registry of slots: the store, the upload validation, the web form, the CLI (``--input SLOT=PATH``), the
predict API and :class:`~vitalens.domain.StudyInputs` all read the same declaration, so a new analyzer adds a slot
in its own module (:func:`register_slot`) and nothing else changes. A slot says what its value is (its
:class:`SlotKind`), how a person calls it ("Right eye (OD)"), which files it accepts and the limits every value must
meet. An analyzer may tighten those limits for the slots it reads (see ``SlotUse`` in
:mod:`vitalens.analyzers._contract`); upload validation checks a value against the limits of the analyzers that will
read it, so what is stored is what they can analyse.

Values, per kind (what :func:`decode_slot` returns and analyzers receive):
    * ``image``: ``uint8`` array ``(H, W, 3)`` (colour ``rgb``) or ``(H, W)`` (``gray``);
    * ``ecg``: a :class:`vitalens.io.ecg.ECGRecord` (mV, leads × samples, ``fs_hz``);
    * ``number``: ``float``; ``category``: ``str`` (one of the choices); ``text``: ``str``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from vitalens._registry import Registry
from vitalens.errors import InputError, UnknownNameError, UnsupportedMediaError

__all__ = [
    "SlotKind",
    "ImageLimits",
    "EcgLimits",
    "NumberLimits",
    "CategoryLimits",
    "TextLimits",
    "SlotLimits",
    "SlotSpec",
    "SlotHint",
    "Decoded",
    "DecodeOptions",
    "SlotDecoder",
    "DEFAULT_DECODERS",
    "DEFAULT_READERS",
    "SlotReader",
    "SlotExample",
    "SLOTS",
    "register_slot",
    "get_slot",
    "list_slots",
    "is_slot",
    "slot_for_attribute",
    "decode_slot",
    "slot_limits_defaults",
    "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

#: File suffixes an image slot accepts (what ``io.images.decode_image`` can decode safely).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/tiff", "image/bmp", "image/webp")


class SlotKind(StrEnum):
    """What a slot's value is."""

    IMAGE = "image"
    ECG = "ecg"
    NUMBER = "number"
    CATEGORY = "category"
    TEXT = "text"


def _tighter(a: float | None, b: float | None, pick: Any) -> float | None:
    """The stricter of two optional limits (``pick`` is ``max`` for lower bounds, ``min`` for upper ones)."""
    if a is None:
        return b
    if b is None:
        return a
    stricter: float = pick(a, b)  # ints stay ints (pixel counts, lead counts)
    return stricter


@dataclass(frozen=True)
class ImageLimits:
    """Limits of an image value (pixels of the uploaded image, before any preprocessing).

    Attributes:
        colour: ``rgb`` (a colour photograph is required) or ``gray`` (one channel; colour is converted).
        min_side: shortest accepted side, px.
        max_side: longest accepted side, px (``None``: no limit beyond ``max_pixels``).
        max_pixels: most pixels (``None``: the server's ``max_image_pixels`` decompression-bomb guard).
        max_aspect: largest long-side / short-side ratio (a 20000×64 strip is no photograph).
    """

    colour: Literal["rgb", "gray"] = "rgb"
    min_side: int | None = None
    max_side: int | None = None
    max_pixels: int | None = None
    max_aspect: float | None = None

    def check(self, value: Any, *, field: str) -> None:
        """Raise ``InputError(field=...)`` naming the first limit ``value`` (an image array) breaks."""
        import numpy as np

        if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim not in (2, 3):
            got = f"{type(value).__name__} {getattr(value, 'shape', '')} {getattr(value, 'dtype', '')}".strip()
            raise InputError(f"expected an 8-bit image array, got {got}", field=field)
        if self.colour == "rgb" and (value.ndim != 3 or value.shape[2] != 3):
            raise InputError(f"a colour (RGB) image is required, got shape {value.shape}", field=field)
        h, w = int(value.shape[0]), int(value.shape[1])
        short, long = min(h, w), max(h, w)
        if self.min_side is not None and short < self.min_side:
            raise InputError(f"image is {w}×{h} px; the shorter side must be at least {self.min_side} px", field=field)
        if self.max_side is not None and long > self.max_side:
            raise InputError(f"image is {w}×{h} px; the longer side may be at most {self.max_side} px", field=field)
        if self.max_pixels is not None and h * w > self.max_pixels:
            raise InputError(f"image is {w}×{h} = {w * h:,} px, above the {self.max_pixels:,}-pixel limit", field=field)
        if self.max_aspect is not None and short > 0 and long / short > self.max_aspect:
            raise InputError(
                f"image is {w}×{h} px (aspect {long / short:.1f}:1); at most {self.max_aspect:g}:1 is accepted",
                field=field,
            )

    def tighten(self, other: ImageLimits) -> ImageLimits:
        """The stricter of both limits, limit by limit (``gray`` where either accepts gray is not stricter: the
        narrower colour policy ``rgb`` wins)."""
        return ImageLimits(
            colour="rgb" if "rgb" in (self.colour, other.colour) else "gray",
            min_side=_tighter(self.min_side, other.min_side, max),  # type: ignore[arg-type]
            max_side=_tighter(self.max_side, other.max_side, min),  # type: ignore[arg-type]
            max_pixels=_tighter(self.max_pixels, other.max_pixels, min),  # type: ignore[arg-type]
            max_aspect=_tighter(self.max_aspect, other.max_aspect, min),
        )


def _check_finite(signal: Any, leads: list[str], *, field: str) -> None:
    """NaN or infinite samples would be filtered into every beat and every score: refuse them, naming the leads."""
    import numpy as np

    finite = np.isfinite(np.asarray(signal, dtype=float))
    if finite.all():
        return
    rows = finite.reshape(finite.shape[0], -1) if finite.ndim > 1 else finite.reshape(1, -1)
    bad = [leads[i] if i < len(leads) else str(i) for i in range(rows.shape[0]) if not rows[i].all()]
    raise InputError(
        f"ECG holds {int((~finite).sum())} missing or non-finite samples (NaN/inf) in lead(s) {', '.join(bad)}",
        field=field,
    )


@dataclass(frozen=True)
class EcgLimits:
    """Limits of an ECG value.

    Attributes:
        fs_min_hz, fs_max_hz: accepted sampling rates, Hz (inclusive).
        min_duration_s, max_duration_s: accepted recording length, s.
        required_leads: leads that must be present **or derivable** (III, aVR, aVL, aVF from I and II).
        min_leads: fewest leads the file itself must hold.
    """

    fs_min_hz: float | None = None
    fs_max_hz: float | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    required_leads: tuple[str, ...] | None = None
    min_leads: int | None = None

    def check(self, value: Any, *, field: str) -> None:
        fs = getattr(value, "fs_hz", None)
        signal = getattr(value, "signal", None)
        leads = list(getattr(value, "leads", []) or [])
        if signal is None or fs is None:
            raise InputError(f"expected an ECG record, got {type(value).__name__}", field=field)
        if not (isinstance(fs, int | float) and math.isfinite(fs) and fs > 0):
            raise InputError(f"ECG sampling rate {fs!r} is not a positive number of Hz", field=field)
        if self.fs_min_hz is not None and fs < self.fs_min_hz:
            raise InputError(f"ECG sampled at {fs:g} Hz; at least {self.fs_min_hz:g} Hz is needed", field=field)
        if self.fs_max_hz is not None and fs > self.fs_max_hz:
            raise InputError(f"ECG sampled at {fs:g} Hz; at most {self.fs_max_hz:g} Hz is accepted", field=field)
        n = int(signal.shape[-1]) if getattr(signal, "ndim", 0) else 0
        _check_finite(signal, leads, field=field)
        duration = n / fs
        if self.min_duration_s is not None and duration + 0.5 / fs < self.min_duration_s:
            raise InputError(
                f"ECG lasts {duration:.3g} s ({n} samples at {fs:g} Hz); at least {self.min_duration_s:g} s is needed",
                field=field,
            )
        if self.max_duration_s is not None and duration > self.max_duration_s:
            raise InputError(f"ECG lasts {duration:.4g} s; at most {self.max_duration_s:g} s is accepted", field=field)
        if self.min_leads is not None and len(leads) < self.min_leads:
            raise InputError(
                f"ECG has {len(leads)} lead(s) ({', '.join(leads) or 'none'}); at least {self.min_leads} needed",
                field=field,
            )
        if self.required_leads:
            from vitalens.io.ecg import normalise_lead_name

            have = {normalise_lead_name(ld) for ld in leads}
            if {"I", "II"} <= have:  # Einthoven/Goldberger: III, aVR, aVL, aVF follow from I and II
                have |= {"III", "aVR", "aVL", "aVF"}
            wanted = [normalise_lead_name(ld) for ld in self.required_leads]
            missing = [ld for ld in wanted if ld not in have]
            if missing:
                raise InputError(
                    f"ECG lacks lead(s) {', '.join(missing)} (it has {', '.join(leads) or 'none'}); "
                    f"needed: {', '.join(wanted)}",
                    field=field,
                )

    def tighten(self, other: EcgLimits) -> EcgLimits:
        leads = tuple(dict.fromkeys((*(self.required_leads or ()), *(other.required_leads or ()))))
        return EcgLimits(
            fs_min_hz=_tighter(self.fs_min_hz, other.fs_min_hz, max),
            fs_max_hz=_tighter(self.fs_max_hz, other.fs_max_hz, min),
            min_duration_s=_tighter(self.min_duration_s, other.min_duration_s, max),
            max_duration_s=_tighter(self.max_duration_s, other.max_duration_s, min),
            required_leads=leads or None,
            min_leads=_tighter(self.min_leads, other.min_leads, max),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class NumberLimits:
    """A number with its unit and inclusive range."""

    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    integer: bool = False

    def check(self, value: Any, *, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"must be a finite number{self._range()}, got {value!r}", field=field)
        if self.integer and float(value) != int(value):
            raise InputError(f"must be a whole number{self._range()}, got {value!r}", field=field)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise InputError(f"must be{self._range()}, got {value:g}", field=field)

    def _range(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f" in {self.minimum:g}–{self.maximum:g}{unit}"
        if self.minimum is not None:
            return f" ≥ {self.minimum:g}{unit}"
        if self.maximum is not None:
            return f" ≤ {self.maximum:g}{unit}"
        return unit

    def tighten(self, other: NumberLimits) -> NumberLimits:
        return NumberLimits(
            minimum=_tighter(self.minimum, other.minimum, max),
            maximum=_tighter(self.maximum, other.maximum, min),
            unit=self.unit or other.unit,
            integer=self.integer or other.integer,
        )


@dataclass(frozen=True)
class CategoryLimits:
    """One of a fixed set of choices."""

    choices: tuple[str, ...] = ()

    def check(self, value: Any, *, field: str) -> None:
        if self.choices and value not in self.choices:
            raise InputError(f"must be one of {', '.join(self.choices)}; got {str(value)[:40]!r}", field=field)

    def tighten(self, other: CategoryLimits) -> CategoryLimits:
        if not self.choices or not other.choices:
            return CategoryLimits(self.choices or other.choices)
        return CategoryLimits(tuple(c for c in self.choices if c in other.choices))


@dataclass(frozen=True)
class TextLimits:
    """Free text (UTF-8), with a length limit in characters."""

    max_chars: int | None = 20_000
    min_chars: int | None = None

    def check(self, value: Any, *, field: str) -> None:
        if not isinstance(value, str):
            raise InputError(f"must be text, got {type(value).__name__}", field=field)
        if self.max_chars is not None and len(value) > self.max_chars:
            raise InputError(f"text has {len(value):,} characters; at most {self.max_chars:,}", field=field)
        if self.min_chars is not None and len(value.strip()) < self.min_chars:
            raise InputError(f"text has {len(value.strip())} characters; at least {self.min_chars}", field=field)

    def tighten(self, other: TextLimits) -> TextLimits:
        return TextLimits(
            max_chars=_tighter(self.max_chars, other.max_chars, min),  # type: ignore[arg-type]
            min_chars=_tighter(self.min_chars, other.min_chars, max),  # type: ignore[arg-type]
        )


SlotLimits = ImageLimits | EcgLimits | NumberLimits | CategoryLimits | TextLimits

_LIMITS_OF_KIND: dict[SlotKind, type[Any]] = {
    SlotKind.IMAGE: ImageLimits,
    SlotKind.ECG: EcgLimits,
    SlotKind.NUMBER: NumberLimits,
    SlotKind.CATEGORY: CategoryLimits,
    SlotKind.TEXT: TextLimits,
}


@dataclass(frozen=True)
class SlotHint:
    """A form value that tells a slot's decoder what the file itself may not say.

    Why declared on the slot: a CSV ECG without a time column needs its sampling rate, and the upload form, the
    predict API, the CLI and the OpenAPI document must all offer that field without knowing ECGs. A hint is sent as
    the form field ``<slot>.<name>`` (``ecg.fs_hz``) or the CLI option ``--hint ecg.fs_hz=500``, checked against its
    limits, passed to the decoder and kept in the stored input's ``meta["hints"]`` so a later decode (the job, the
    export) reads the file the same way.
    """

    name: str
    limits: NumberLimits | CategoryLimits
    description: str = ""

    def parse(self, text: Any, *, slot: str) -> float | str:
        """The hint's value from a form/CLI string, checked against its limits (``InputError`` naming the field)."""
        field = f"{slot}.{self.name}"
        raw = str(text).strip()
        if isinstance(self.limits, NumberLimits):
            try:
                number = float(raw)
            except ValueError:
                raise InputError(f"must be a number, got {raw[:40]!r}", field=field) from None
            self.limits.check(number, field=field)
            return number
        self.limits.check(raw.lower(), field=field)
        return raw.lower()

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limits": {k: v for k, v in dataclasses.asdict(self.limits).items() if v not in (None, (), "")},
            "description": self.description,
        }


@dataclass(frozen=True)
class Decoded:
    """An upload decoded by its slot: the value analyzers receive, the media type to store, and what was learnt
    (image size, DICOM tags, ECG rate and leads, the hints used)."""

    value: Any
    media_type: str
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def width(self) -> int | None:
        shape = getattr(self.value, "shape", None)
        return int(shape[1]) if shape is not None and len(shape) >= 2 else None

    @property
    def height(self) -> int | None:
        shape = getattr(self.value, "shape", None)
        return int(shape[0]) if shape is not None and len(shape) >= 2 else None


@dataclass(frozen=True)
class DecodeOptions:
    """What a decoder may use besides the bytes: the client's file name (its suffix picks an ECG reader), the
    upload limits, the parsed hints, and the limits of the one analyzer the value is decoded for (``limits``: a
    decoder that refuses early, such as an image below its floor, then names that analyzer's floor rather than the
    slot's looser one)."""

    filename: str = ""
    max_bytes: int | None = None
    max_pixels: int = 40_000_000
    hints: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    limits: Any | None = None


#: ``decoder(spec, data, options) -> Decoded``: how one slot turns uploaded bytes (or a form field's text) into its
#: value. Every kind has a default (:data:`DEFAULT_DECODERS`); a plug-in slot may bring its own.
SlotDecoder = Callable[["SlotSpec", bytes | str, DecodeOptions], Decoded]


@dataclass(frozen=True)
class SlotSpec:
    """One named input slot.

    Attributes:
        name: the slot name stored in rows and used in forms, the CLI and the API (``fundus_right``).
        kind: what the value is (:class:`SlotKind`).
        title: what a clinician calls it ("Right eye (OD)").
        limits: the limits every value must meet (its kind's limits class).
        modality: the imaging/signal modality (``fundus``, ``ecg``...), ``None`` for numbers, categories, text.
        laterality: ``left``/``right`` for a side-specific slot, else ``None``.
        accept: file suffixes accepted for an upload (the web form's ``accept``); empty for non-file slots.
        attribute: the :class:`~vitalens.domain.StudyInputs` attribute holding the value (default: ``name``).
        source: where a stored study keeps it: ``upload`` (an input file/value row), ``study`` (a study field, the
            age) or ``patient`` (a patient field, the sex).
        description: one line for help texts and the OpenAPI schema.
        hints: form values its decoder reads (:class:`SlotHint`), e.g. the ECG's ``fs_hz``.
        decoder: how an upload decodes (:data:`SlotDecoder`); default the kind's (:data:`DEFAULT_DECODERS`).
        reader: how a local file reads (``vitalens analyze --input SLOT=PATH``, :data:`SlotReader`); default: the
            kind's (:data:`DEFAULT_READERS`: a WFDB ``.hea`` beside its ``.dat``), else the decoder on its bytes.
        example: a synthetic upload of this slot (:data:`SlotExample`, from the synthetic twins): demos and the
            conformance tests run every analyzer on it without knowing any.
    """

    name: str
    kind: SlotKind
    title: str
    limits: SlotLimits
    modality: str | None = None
    laterality: Literal["left", "right"] | None = None
    accept: tuple[str, ...] = ()
    attribute: str = ""
    source: Literal["upload", "study", "patient"] = "upload"
    description: str = ""
    hints: tuple[SlotHint, ...] = ()
    decoder: SlotDecoder | None = dataclasses.field(default=None, compare=False)
    reader: SlotReader | None = dataclasses.field(default=None, compare=False)
    example: SlotExample | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.limits, _LIMITS_OF_KIND[SlotKind(self.kind)]):
            raise ValueError(
                f"slot {self.name!r} of kind {self.kind} needs {_LIMITS_OF_KIND[SlotKind(self.kind)].__name__}, "
                f"got {type(self.limits).__name__}"
            )
        if not self.attribute:
            object.__setattr__(self, "attribute", self.name)

    @property
    def is_file(self) -> bool:
        """True for slots whose value arrives as a file (images, ECGs)."""
        return self.kind in (SlotKind.IMAGE, SlotKind.ECG)

    def limits_with(self, extra: SlotLimits | None) -> SlotLimits:
        """This slot's limits tightened by ``extra`` (an analyzer's), which must be of the same kind."""
        if extra is None:
            return self.limits
        if type(extra) is not type(self.limits):
            raise ValueError(
                f"slot {self.name!r} takes {type(self.limits).__name__}; an analyzer gave {type(extra).__name__}"
            )
        return self.limits.tighten(extra)  # type: ignore[arg-type]

    def check(self, value: Any, limits: SlotLimits | None = None) -> None:
        """Raise ``InputError(field=name)`` when ``value`` breaks this slot's limits (tightened by ``limits``)."""
        self.limits_with(limits).check(value, field=self.name)

    def hint(self, name: str) -> SlotHint:
        """The hint ``name``; an unknown one is an ``InputError`` naming ``<slot>.<name>`` and the valid hints."""
        found = next((h for h in self.hints if h.name == name), None)
        if found is None:
            valid = ", ".join(f"{self.name}.{h.name}" for h in self.hints) or "none"
            raise InputError(f"{self.name} takes no hint {name!r} (hints: {valid})", field=f"{self.name}.{name}")
        return found

    def parse_hints(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Form/CLI strings of hints (by hint name) → checked values; empty strings are left out."""
        return {k: self.hint(k).parse(v, slot=self.name) for k, v in (raw or {}).items() if str(v).strip() != ""}

    def decode(
        self,
        data: bytes | str,
        *,
        filename: str = "",
        max_bytes: int | None = None,
        max_pixels: int = 40_000_000,
        hints: Mapping[str, Any] | None = None,
        limits: SlotLimits | None = None,
    ) -> Decoded:
        """Decode an upload of this slot with its decoder (limits are **not** checked here, see :meth:`check`).

        ``hints`` are values already parsed (:meth:`parse_hints`) or raw strings; each is checked against its
        declaration. The hints used are recorded in ``meta["hints"]``. ``limits`` are those of the one analyzer
        the value is for (``contract.limits_for(slot)``), so that a refusal during decoding names its floor.
        """
        parsed = {k: self.hint(k).parse(v, slot=self.name) for k, v in (hints or {}).items() if v is not None}
        options = DecodeOptions(
            filename=filename, max_bytes=max_bytes, max_pixels=max_pixels, hints=parsed, limits=limits
        )
        decoder = self.decoder or DEFAULT_DECODERS[SlotKind(self.kind)]
        decoded = decoder(self, data, options)
        if parsed:
            decoded.meta.setdefault("hints", dict(parsed))
        return decoded

    def read(
        self,
        path: Path,
        *,
        max_bytes: int | None = None,
        max_pixels: int = 40_000_000,
        hints: Mapping[str, Any] | None = None,
        limits: SlotLimits | None = None,
    ) -> Decoded:
        """Read a local file of this slot (the CLI): the slot's reader, else :meth:`decode` on the file's bytes.

        Raises:
            InputError: the file does not exist (naming it), or as :meth:`decode`.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"file not found: {path}", field=self.name)
        parsed = {k: self.hint(k).parse(v, slot=self.name) for k, v in (hints or {}).items() if v is not None}
        reader = self.reader or DEFAULT_READERS.get(SlotKind(self.kind))
        if reader is None:
            return self.decode(
                path.read_bytes(),
                filename=path.name,
                max_bytes=max_bytes,
                max_pixels=max_pixels,
                hints=parsed,
                limits=limits,
            )
        options = DecodeOptions(
            filename=path.name, max_bytes=max_bytes, max_pixels=max_pixels, hints=parsed, limits=limits
        )
        decoded = reader(self, path, options)
        if parsed:
            decoded.meta.setdefault("hints", dict(parsed))
        return decoded

    def public(self) -> dict[str, Any]:
        """JSON description (CLI ``vitalens analyzers --json``, API, web form)."""
        return {
            "name": self.name,
            "kind": str(self.kind),
            "title": self.title,
            "modality": self.modality,
            "laterality": self.laterality,
            "accept": list(self.accept),
            "source": self.source,
            "limits": {k: v for k, v in dataclasses.asdict(self.limits).items() if v not in (None, (), "")},
            "description": self.description,
            "hints": [h.public() for h in self.hints],
        }


def _discover_slot_definers() -> None:
    """Analyzer modules (and plug-ins) register the slots they add; discover them before any slot lookup."""
    import importlib

    importlib.import_module("vitalens.analyzers").ANALYZERS.discover()


#: Every registered slot. Built-in slots are registered below; analyzers and plug-ins add theirs.
SLOTS: Registry[SlotSpec] = Registry("input slot", after=(_discover_slot_definers,))


def register_slot(spec: SlotSpec) -> SlotSpec:
    """Register an input slot (from the module of the analyzer that introduces it); a duplicate is an error."""
    return SLOTS.register(spec.name, spec)


def get_slot(name: str) -> SlotSpec:
    """The slot ``name``; unknown names fail with the valid ones and the closest match."""
    return SLOTS.get(name)


def list_slots(pattern: str = "*") -> list[str]:
    return SLOTS.names(pattern)


def is_slot(name: str) -> bool:
    return name in SLOTS


def slot_for_attribute(attribute: str) -> SlotSpec | None:
    """The slot whose :class:`~vitalens.domain.StudyInputs` attribute is ``attribute`` (``age_years`` → ``age``)."""
    if attribute in SLOTS._items:  # the common case, no discovery needed
        spec = SLOTS._items[attribute]
        if spec.attribute == attribute:
            return spec
    for _, spec in SLOTS.items():
        if spec.attribute == attribute:
            return spec
    return None


def decode_slot(
    name: str,
    data: bytes | str,
    *,
    filename: str = "",
    max_bytes: int | None = None,
    max_pixels: int = 40_000_000,
    hints: Mapping[str, Any] | None = None,
) -> Any:
    """Decode an uploaded value of slot ``name`` (bytes of a file, or the text of a form field) safely.

    Args:
        name: the slot.
        data: the file's bytes, or a form field's text (numbers, categories, text slots).
        filename: the client's file name (only its suffix is used, to pick an ECG reader).
        max_bytes: refuse larger files (upload limit).
        max_pixels: decompression-bomb guard for images.
        hints: decoder hints, e.g. ``{"fs_hz": 500}`` for a CSV ECG without a time column.

    Returns:
        The value in the form its kind defines (module docstring). Limits are **not** checked here (see
        :meth:`SlotSpec.check`), only that the bytes decode.

    Raises:
        UnsupportedMediaError: a file of a type the slot does not take (an image uploaded as an ECG...).
        InputError: undecodable, corrupt, or a bad number/choice.
    """
    spec = get_slot(name)
    return spec.decode(data, filename=filename, max_bytes=max_bytes, max_pixels=max_pixels, hints=hints).value


def _raw(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def decode_image_slot(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    """JPEG/PNG/TIFF/BMP/WebP or DICOM → ``uint8`` array in the slot's colour policy; a DICOM's tags (eye, age on
    the day, UIDs — never the name or birth date) go into ``meta["dicom"]``."""
    from typing import get_args

    from vitalens.io.dicom import ImageKind, is_dicom, read_dicom_image
    from vitalens.io.images import decode_image, sniff_image_type

    raw = _raw(data)
    own = options.limits if isinstance(options.limits, ImageLimits) else spec.limits
    limits = own if isinstance(own, ImageLimits) else ImageLimits()
    min_side = limits.min_side or 1
    if is_dicom(raw):
        kind = spec.modality if spec.modality in get_args(ImageKind) else None
        dicom = read_dicom_image(
            raw,
            field=spec.name,
            colour=limits.colour,
            kind=kind,  # type: ignore[arg-type]
            eye=spec.laterality,
            max_pixels=options.max_pixels,
            min_side=min_side,
        )
        return Decoded(dicom.array, "application/dicom", {"dicom": dicom.meta.as_dict()})
    array = decode_image(
        raw,
        field=spec.name,
        max_pixels=options.max_pixels,
        max_bytes=options.max_bytes,
        colour=limits.colour,
        min_side=min_side,
    )
    return Decoded(array, sniff_image_type(raw) or "application/octet-stream")


def decode_ecg_slot(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    """WFDB (.zip of .hea + .dat), DICOM waveform, HL7 aECG, GE MUSE XML, CSV, NumPy → ``ECGRecord``; the hints
    ``fs_hz`` and ``format`` are passed to the reader. The rate, leads and length go into ``meta``."""
    from vitalens.io.ecg import read_ecg_bytes
    from vitalens.io.images import sniff_image_type

    raw = _raw(data)
    if sniff_image_type(raw) is not None:
        raise UnsupportedMediaError("an image was uploaded as an ECG; upload it to an image slot", field=spec.name)
    fs = options.hints.get("fs_hz")
    fmt = options.hints.get("format")
    try:
        record = read_ecg_bytes(
            raw,
            filename=options.filename or "ecg",
            format=str(fmt) if fmt else None,
            fs_hz=float(fs) if fs is not None else None,
            max_bytes=options.max_bytes,
        )
    except (InputError, UnsupportedMediaError) as exc:
        if exc.field != spec.name:
            message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
            raise type(exc)(message, field=spec.name) from exc
        raise
    except UnknownNameError as exc:
        raise InputError(str(exc), field=f"{spec.name}.format") from exc
    except Exception as exc:  # a reader's own error type: the file is not a readable ECG
        raise InputError(f"unreadable ECG file: {exc}", field=spec.name) from exc
    meta = {
        "fs_hz": float(record.fs_hz),
        "leads": list(record.leads),
        "n_samples": int(record.signal.shape[1]),
        "source_format": getattr(record, "source_format", None),
    }
    return Decoded(record, "application/octet-stream", meta)


def decode_number_slot(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    text = _text(data, spec.name)
    try:
        value = float(text.strip())
    except ValueError:
        where = spec.limits._range() if isinstance(spec.limits, NumberLimits) else ""
        raise InputError(f"must be a number{where}, got {text.strip()[:40]!r}", field=spec.name) from None
    return Decoded(value, "text/plain")


def decode_category_slot(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    return Decoded(_text(data, spec.name).strip().lower(), "text/plain")


def decode_text_slot(spec: SlotSpec, data: bytes | str, options: DecodeOptions) -> Decoded:
    return Decoded(_text(data, spec.name), "text/plain; charset=utf-8")


def read_ecg_slot(spec: SlotSpec, path: Path, options: DecodeOptions) -> Decoded:
    """A local ECG file by path, so a WFDB record is read from its ``.hea`` beside its ``.dat`` (an upload must be
    a ``.zip`` of both); the hints ``fs_hz`` and ``format`` as for an upload."""
    from vitalens.io.ecg import read_ecg

    if options.max_bytes is not None and path.stat().st_size > options.max_bytes:
        raise InputError(
            f"file is {path.stat().st_size / 1e6:.1f} MB, above the {options.max_bytes / 1e6:.1f} MB limit",
            field=spec.name,
        )
    fs = options.hints.get("fs_hz")
    fmt = options.hints.get("format")
    try:
        record = read_ecg(path, format=str(fmt) if fmt else None, fs_hz=float(fs) if fs is not None else None)
    except (InputError, UnsupportedMediaError) as exc:
        if exc.field != spec.name:
            message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
            raise type(exc)(message, field=spec.name) from exc
        raise
    meta = {"fs_hz": float(record.fs_hz), "leads": list(record.leads), "n_samples": int(record.signal.shape[1])}
    return Decoded(record, "application/octet-stream", meta)


#: ``example(seed) -> (filename, bytes or text, hints)``: a synthetic upload of one slot (never a real patient's).
SlotExample = Callable[[int], tuple[str, bytes | str, dict[str, str]]]


def _png(array: Any) -> bytes:
    from vitalens.io.images import encode_png

    return encode_png(array)


def _fundus_example(side: str) -> SlotExample:
    def make(seed: int) -> tuple[str, bytes | str, dict[str, str]]:
        import numpy as np

        from vitalens.synth.odir import EyeFindings, render_fundus

        image = render_fundus(np.random.default_rng(seed), 256, side, EyeFindings())
        return f"synthetic_{side}.png", _png(image), {}

    return make


def _oct_example(seed: int) -> tuple[str, bytes | str, dict[str, str]]:
    import numpy as np

    from vitalens.synth.oct import render_bscan

    return "synthetic_bscan.png", _png(render_bscan(np.random.default_rng(seed), "NORMAL", height=256, width=256)), {}


def _cxr_example(seed: int) -> tuple[str, bytes | str, dict[str, str]]:
    import numpy as np

    from vitalens.data.covid_radiography import CXR_CLASSES
    from vitalens.synth.cxr import render_cxr

    return "synthetic_cxr.png", _png(render_cxr(256, CXR_CLASSES[0], np.random.default_rng(seed))), {}


def _ecg_example(seed: int) -> tuple[str, bytes | str, dict[str, str]]:
    """A synthetic 10 s, 12-lead ECG at 100 Hz as a CSV without a time column (its rate travels as the hint)."""
    from vitalens.io.ecg import STANDARD_LEADS
    from vitalens.synth.ptbxl import synth_ecg

    x = synth_ecg("NORM", fs=100, seed=seed)
    text = ",".join(STANDARD_LEADS) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in x.T)
    return "synthetic_ecg.csv", text.encode(), {"fs_hz": "100"}


#: ``reader(spec, path, options) -> Decoded``: how one slot reads a local file (formats that span several files).
SlotReader = Callable[["SlotSpec", Path, DecodeOptions], Decoded]

#: Kinds whose local files are read by path rather than by bytes.
DEFAULT_READERS: dict[SlotKind, SlotReader] = {SlotKind.ECG: read_ecg_slot}

#: The decoder of each kind, used by every slot that brings none of its own.
DEFAULT_DECODERS: dict[SlotKind, SlotDecoder] = {
    SlotKind.IMAGE: decode_image_slot,
    SlotKind.ECG: decode_ecg_slot,
    SlotKind.NUMBER: decode_number_slot,
    SlotKind.CATEGORY: decode_category_slot,
    SlotKind.TEXT: decode_text_slot,
}


def _text(data: bytes | str, name: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"text is not valid UTF-8 (byte {exc.start})", field=name) from None


def slot_limits_defaults(kind: SlotKind) -> SlotLimits:
    """An empty limits object of ``kind`` (no limit set)."""
    return _LIMITS_OF_KIND[SlotKind(kind)]()  # type: ignore[no-any-return]


# -- the built-in slots ----------------------------------------------------------------------------------------
_FUNDUS = ImageLimits(colour="rgb", min_side=64, max_aspect=4.0)
_GRAY_IMAGE = ImageLimits(colour="gray", min_side=64, max_aspect=4.0)
#: Any ECG vitalens reads: a real rate (PTB-XL's 100 Hz up to 10 kHz research carts), 1 s to 24 h.
_ECG = EcgLimits(fs_min_hz=50.0, fs_max_hz=10_000.0, min_duration_s=1.0, max_duration_s=86_400.0, min_leads=1)
#: The ECG readers' formats (``vitalens.io.ecg.ECG_FORMATS``; not imported here: slots are read at import).
_ECG_FORMATS = ("wfdb", "dicom", "aecg", "muse", "csv", "npy", "npz", "mat", "zip")

for _spec in (
    SlotSpec(
        "fundus_left",
        SlotKind.IMAGE,
        "Left eye (OS)",
        _FUNDUS,
        modality="fundus",
        laterality="left",
        accept=IMAGE_SUFFIXES,
        description="Colour fundus photograph of the left eye.",
        example=_fundus_example("left"),
    ),
    SlotSpec(
        "fundus_right",
        SlotKind.IMAGE,
        "Right eye (OD)",
        _FUNDUS,
        modality="fundus",
        laterality="right",
        accept=IMAGE_SUFFIXES,
        description="Colour fundus photograph of the right eye.",
        example=_fundus_example("right"),
    ),
    SlotSpec(
        "oct",
        SlotKind.IMAGE,
        "OCT B-scan",
        _GRAY_IMAGE,
        modality="oct",
        accept=IMAGE_SUFFIXES,
        description="One optical coherence tomography B-scan.",
        example=_oct_example,
    ),
    SlotSpec(
        "cxr",
        SlotKind.IMAGE,
        "Chest X-ray",
        _GRAY_IMAGE,
        modality="cxr",
        accept=IMAGE_SUFFIXES,
        description="A frontal chest radiograph.",
        example=_cxr_example,
    ),
    SlotSpec(
        "ecg",
        SlotKind.ECG,
        "12-lead ECG",
        _ECG,
        modality="ecg",
        accept=(".zip", ".dcm", ".xml", ".csv", ".txt", ".npy", ".npz", ".mat"),
        description="A resting ECG: WFDB as a .zip of .hea + .dat, DICOM waveform, HL7 aECG or GE MUSE XML, CSV.",
        hints=(
            SlotHint(
                "fs_hz",
                NumberLimits(minimum=_ECG.fs_min_hz, maximum=_ECG.fs_max_hz, unit="Hz"),
                "Sampling rate, for a CSV without a time column or a .npy array.",
            ),
            SlotHint("format", CategoryLimits(_ECG_FORMATS), "The file format (default: detected from the file)."),
        ),
        example=_ecg_example,
    ),
    SlotSpec(
        "age",
        SlotKind.NUMBER,
        "Age",
        NumberLimits(minimum=0.0, maximum=120.0, unit="years"),
        attribute="age_years",
        source="study",
        description="The patient's age at the study, in years (0–120).",
        example=lambda seed: ("", str(40 + seed % 40), {}),
    ),
    SlotSpec(
        "sex",
        SlotKind.CATEGORY,
        "Sex",
        CategoryLimits(("female", "male", "other", "unknown")),
        source="patient",
        description="The patient's sex as recorded (female, male, other, unknown).",
        example=lambda seed: ("", ("female", "male")[seed % 2], {}),
    ),
):
    register_slot(_spec)
del _spec
