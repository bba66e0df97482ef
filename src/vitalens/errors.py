"""Typed exceptions shared by every layer; the API maps them to 4xx and the CLI to exit code 2.

Why typed: the HTTP layer and the CLI must tell "the user sent something wrong" (4xx, exit 2) from
"the server broke" (5xx, traceback) without parsing messages.
"""

from __future__ import annotations

__all__ = [
    "VitalensError",
    "InputError",
    "ArtifactError",
    "UnknownNameError",
    "UnsupportedMediaError",
    "StorageError",
    "RegistryError",
    "QualityRefusal",
]


class VitalensError(Exception):
    """Base of every error vitalens raises on purpose."""


class InputError(VitalensError, ValueError):
    """An input violates the contract of the analyzer or of the upload limits.

    Args:
        message: one line a clinician can act on, naming actual vs expected values.
        field: the input it concerns (``fundus_left``, ``age``, ``ecg``...), for forms and API errors.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.field}: {base}" if self.field and not base.startswith(f"{self.field}:") else base


class UnsupportedMediaError(InputError):
    """The bytes are not of a type this input accepts (HTTP 415)."""


class ArtifactError(VitalensError):
    """A model artifact is missing, corrupt, or belongs to another analyzer."""


class UnknownNameError(VitalensError, ValueError):
    """A registry lookup failed; the message lists the valid names and the closest match."""


class StorageError(VitalensError):
    """The blob store (a folder or an S3-compatible server) failed a read or write (HTTP 503); nothing was stored."""


class RegistryError(VitalensError):
    """A plug-in module or entry point failed to import: the registry names it instead of dropping it silently."""


class QualityRefusal(InputError):
    """An input quality gate refused the input (not gradable, or not the kind of input the analyzer expects)."""
