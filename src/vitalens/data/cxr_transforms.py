"""Chest radiograph transforms: the deterministic preprocessing, CLAHE for display, augmentation and synthetic
opacities.

Why these and no more: a radiograph is a grayscale image; the ImageNet encoder sees it as three equal channels,
padded to a square (aspect kept) and resized, normalised as the card says (:class:`CxrPreprocess`, used identically
in training, the bench and the analyzer). Augmentation never flips left–right: the heart is on the patient's left,
and a mirrored chest is an anomaly (dextrocardia), not a normal variant. CLAHE (contrast-limited adaptive histogram
equalisation, Zuiderveld 1994) is for the *display* under heat maps only; the model never sees it.

:class:`SyntheticOpacity` draws blurred, textured densities into the lung zones of a normal radiograph: the
image-space synthetic anomalies a fully normal-only scorer can be trained on (no abnormal radiograph is used).

Random steps own their generator (``set_random_state(seed)``); nothing touches the global RNGs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from vitalens.data.transforms import FundusGeometry, ResizeSquare, ToNormalizedTensor
from vitalens.errors import InputError

__all__ = [
    "to_grayscale",
    "CxrPreprocess",
    "ClaheEnhance",
    "CxrAugment",
    "SyntheticOpacity",
]

logger = logging.getLogger(__name__)


def to_grayscale(image: np.ndarray | Image.Image, *, field: str = "cxr") -> np.ndarray:
    """uint8 ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` → uint8 ``(H, W)`` (ITU-R 601 luma for RGB).

    Raises:
        InputError: another dtype, rank or channel count, or an empty image.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"))
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise InputError(f"image dtype is {a.dtype}, expected uint8", field=field)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        rgb = a[:, :, :3].astype(np.float32)
        a = np.clip(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32) + 0.5, 0, 255).astype(np.uint8)
    if a.ndim != 2:
        raise InputError(f"image shape is {a.shape}, expected (H, W) or (H, W, 3)", field=field)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"image shape is {a.shape}, expected non-empty", field=field)
    return a


class CxrPreprocess:
    """Grayscale → centre square crop → resize → three equal channels → ``(x/255 − mean)/std``.

    The centre crop (torchxrayvision's ``XRayCenterCrop``) rather than padding: a portrait film padded with black
    bars looks nothing like the square training radiographs to an anomaly detector, while its centre square holds
    the lungs.

    Args:
        size: side the encoder sees, pixels.
        mean, std: per-channel statistics on the [0, 1] scale (the encoder's; Lite0: 127/255 and 128/255).
        interpolation: resize filter (``area`` is best for the usual strong downsizing of radiographs).
    """

    def __init__(
        self,
        size: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        *,
        interpolation: str = "area",
    ) -> None:
        self.resize = ResizeSquare(size, interpolation=interpolation)
        self.normalize = ToNormalizedTensor(mean, std) if mean is not None else ToNormalizedTensor()

    @property
    def size(self) -> int:
        return self.resize.size

    @staticmethod
    def crop_box(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(top, left, side, side)`` of the centred square of an ``(H, W)`` image."""
        h, w = int(shape[0]), int(shape[1])
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side, side

    def square(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """uint8 ``(size, size, 3)`` (equal channels): what the encoder sees before normalisation."""
        gray = to_grayscale(image)
        top, left, side, _ = self.crop_box(gray.shape)
        gray = gray[top : top + side, left : left + side]
        return self.resize(np.repeat(gray[:, :, None], 3, axis=2))

    def __call__(self, image: np.ndarray | Image.Image) -> torch.Tensor:
        """uint8 image → float32 ``(3, size, size)``."""
        return self.normalize(self.square(image))

    def geometry(self, image: np.ndarray | Image.Image) -> FundusGeometry:
        """How ``image`` maps onto the square input (the centre crop), to carry heat maps back (0 outside it)."""
        h, w = to_grayscale(image).shape
        box = self.crop_box((h, w))
        return FundusGeometry(input_shape=(h, w), crop=box, pad=(0, 0), side=box[2], size=self.size)

    def config(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mean": list(self.normalize.mean),
            "std": list(self.normalize.std),
            "interpolation": self.resize.interpolation,
            "channels": "grayscale replicated to 3",
            "crop": "centre square",
        }


class ClaheEnhance:
    """Contrast-limited adaptive histogram equalisation (OpenCV) of a radiograph, for display under heat maps.

    Args:
        clip_limit: contrast limit per tile (OpenCV's units; 2.0 is the common radiology default).
        tiles: tiles per side.
    """

    def __init__(self, clip_limit: float = 2.0, tiles: int = 8) -> None:
        if clip_limit <= 0 or tiles < 1:
            raise InputError(f"CLAHE needs clip_limit > 0 and tiles ≥ 1, got {clip_limit}, {tiles}", field="clahe")
        self.clip_limit, self.tiles = float(clip_limit), int(tiles)

    def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """uint8 image → uint8 ``(H, W)`` equalised."""
        import cv2

        gray = np.ascontiguousarray(to_grayscale(image))
        return cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tiles, self.tiles)).apply(gray)


class CxrAugment:
    """Mild random affine (rotation, scale, shift) and exposure jitter of a uint8 ``(3, H, W)`` radiograph tensor.

    No flips (see the module docstring). Parameters come from this instance's ``torch.Generator``.
    """

    def __init__(
        self,
        degrees: float = 5.0,
        scale: tuple[float, float] = (0.95, 1.05),
        translate: float = 0.04,
        brightness: float = 0.1,
        contrast: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.degrees, self.scale, self.translate = float(degrees), scale, float(translate)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self._gen = torch.Generator().manual_seed(int(seed))

    def set_random_state(self, seed: int) -> CxrAugment:
        self._gen.manual_seed(int(seed))
        return self

    def _u(self, lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand((), generator=self._gen))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        if image.dtype != torch.uint8 or image.ndim != 3:
            raise InputError(
                f"expected a uint8 (C, H, W) tensor, got {image.dtype} {tuple(image.shape)}", field="image"
            )
        h, w = image.shape[1:]
        out = F.affine(
            image,
            angle=self._u(-self.degrees, self.degrees),
            translate=[
                round(self._u(-self.translate, self.translate) * w),
                round(self._u(-self.translate, self.translate) * h),
            ],
            scale=self._u(*self.scale),
            shear=[0.0, 0.0],
            interpolation=F.InterpolationMode.BILINEAR,
        )
        out = F.adjust_brightness(out, self._u(1 - self.brightness, 1 + self.brightness))
        return F.adjust_contrast(out, self._u(1 - self.contrast, 1 + self.contrast))


class SyntheticOpacity:
    """Paint 1–4 blurred, textured densities into the lung zones of a grayscale radiograph.

    The zones are the two vertical ellipses where lungs lie on a centred posteroanterior film (centres at 30 % and
    70 % of the width, 30–75 % of the height). Each blob raises the local intensity towards white by ``strength``
    (a fraction of the headroom), like consolidation or ground glass raises density.

    Args:
        strength: range of the added density, fraction of (255 − pixel).
        radius: range of blob radii, fraction of the image side.
        max_blobs: upper bound of blobs per image.
        seed: generator seed.
    """

    def __init__(
        self,
        strength: tuple[float, float] = (0.15, 0.45),
        radius: tuple[float, float] = (0.05, 0.14),
        max_blobs: int = 4,
        seed: int = 0,
    ) -> None:
        self.strength, self.radius, self.max_blobs = strength, radius, int(max_blobs)
        self._rng = np.random.default_rng(seed)

    def set_random_state(self, seed: int) -> SyntheticOpacity:
        self._rng = np.random.default_rng(seed)
        return self

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W)`` (or RGB, converted) → uint8 ``(H, W)`` with synthetic opacities."""
        gray = to_grayscale(image).astype(np.float32)
        h, w = gray.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        side = float(min(h, w))
        density = np.zeros_like(gray)
        for _ in range(int(self._rng.integers(1, self.max_blobs + 1))):
            cx = w * (0.3 if self._rng.random() < 0.5 else 0.7) + self._rng.normal(0.0, 0.05) * w
            cy = h * self._rng.uniform(0.3, 0.75)
            r = side * self._rng.uniform(*self.radius)
            elong = self._rng.uniform(0.7, 1.4)
            d = ((xx - cx) / r) ** 2 + ((yy - cy) / (r * elong)) ** 2
            density = np.maximum(density, np.exp(-d) * self._rng.uniform(*self.strength))
        texture = gaussian_filter(self._rng.normal(0.0, 1.0, gray.shape).astype(np.float32), side / 60.0)
        texture = 0.6 + 0.4 * texture / (np.abs(texture).max() + 1e-6)
        out = gray + density * texture * (255.0 - gray)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
