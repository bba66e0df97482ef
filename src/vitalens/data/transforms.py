"""Fundus image transforms: deterministic preprocessing shared by training and inference, and augmentation.

Why small callable classes (MONAI style): the same :class:`FundusPreprocess` runs in training, in the analyzer
and in the benches, with its parameters (size, mean, std) stored in the model card, so train and serve cannot
drift. Random steps own their generator, seeded by ``set_random_state(seed)``; nothing here touches the global
numpy or torch RNG, so runs are reproducible and DataLoader workers do not share streams by accident.

Shapes: images enter as uint8 RGB ``(H, W, 3)`` numpy arrays (or PIL images); tensors are ``(3, H, W)``.

Example:
    >>> pre = FundusPreprocess(size=224)                    # doctest: +SKIP
    >>> x = pre(np.asarray(Image.open("0_left.jpg")))       # doctest: +SKIP
    >>> x.shape, x.dtype                                    # doctest: +SKIP
    (torch.Size([3, 224, 224]), torch.float32)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from vitalens._naming import unknown_name_error
from vitalens.errors import InputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "as_rgb_array",
    "CropFundusBorder",
    "ResizeSquare",
    "ToNormalizedTensor",
    "FundusPreprocess",
    "FundusGeometry",
    "FundusAugment",
]

logger = logging.getLogger(__name__)

#: ImageNet statistics on the [0, 1] scale: the default, matching ImageNet-initialised backbones.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


def as_rgb_array(image: np.ndarray | Image.Image, *, field: str = "image") -> np.ndarray:
    """Return ``image`` as a uint8 ``(H, W, 3)`` array (PIL images are converted to RGB).

    Raises:
        InputError: another dtype or shape (actual vs expected in the message).
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(f"image dtype is {array.dtype}, expected uint8", field=field)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"image shape is {array.shape}, expected (H, W, 3) RGB", field=field)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"image shape is {array.shape}, expected non-empty", field=field)
    return array


def _check_stats(
    mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validate RGB statistics; ``None`` (a card without them) means the ImageNet defaults."""
    m = tuple(float(v) for v in (IMAGENET_MEAN if mean is None else mean))
    s = tuple(float(v) for v in (IMAGENET_STD if std is None else std))
    if len(m) != 3 or len(s) != 3:
        raise InputError(f"mean/std need 3 values (RGB), got {len(m)} and {len(s)}", field="mean")
    if min(s) <= 0:
        raise InputError(f"std must be > 0, got {s}", field="std")
    return m, s


class CropFundusBorder:
    """Crop a fundus photograph to the bounding box of its bright field of view.

    A row (column) belongs to the field of view when at least ``min_fraction`` of its pixels have luminance
    (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) above ``threshold``; JPEG noise in the black border stays below
    both. An image without any such row is returned unchanged (logged at debug level).

    Args:
        threshold: luminance, 0–255, above which a pixel is in the field of view.
        min_fraction: share of a row/column's pixels that must be bright, 0–1.
    """

    def __init__(self, threshold: float = 10.0, min_fraction: float = 0.01) -> None:
        if not 0 <= threshold < 255:
            raise InputError(f"threshold {threshold} outside [0, 255)", field="threshold")
        if not 0 <= min_fraction < 1:
            raise InputError(f"min_fraction {min_fraction} outside [0, 1)", field="min_fraction")
        self.threshold = float(threshold)
        self.min_fraction = float(min_fraction)

    def box(self, image: np.ndarray | Image.Image) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the field of view, pixels (the whole image when none is found)."""
        array = as_rgb_array(image)
        lum = array @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        mask = lum > self.threshold
        rows = np.flatnonzero(mask.sum(axis=1) > self.min_fraction * array.shape[1])
        cols = np.flatnonzero(mask.sum(axis=0) > self.min_fraction * array.shape[0])
        if rows.size == 0 or cols.size == 0:
            logger.debug("CropFundusBorder: no pixel above luminance %.1f; image left uncropped", self.threshold)
            return 0, 0, array.shape[0], array.shape[1]
        return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)

    def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """``(H, W, 3)`` uint8 → ``(h, w, 3)`` uint8 view cropped to the field of view."""
        array = as_rgb_array(image)
        top, left, h, w = self.box(array)
        return array[top : top + h, left : left + w]


class ResizeSquare:
    """Pad to a square with black (centred, aspect kept), then resize to ``size × size`` with PIL.

    Args:
        size: output side, pixels.
        interpolation: ``"bilinear"`` (default), ``"area"`` (box filter, best for strong downsizing),
            ``"bicubic"``, ``"lanczos"`` or ``"nearest"``.
    """

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        if int(size) < 1:
            raise InputError(f"size must be ≥ 1 pixel, got {size}", field="size")
        if interpolation not in _RESAMPLE:
            raise unknown_name_error("interpolation", interpolation, _RESAMPLE)
        self.size = int(size)
        self.interpolation = interpolation

    def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """``(H, W, 3)`` uint8 → ``(size, size, 3)`` uint8."""
        array = as_rgb_array(image)
        h, w = array.shape[:2]
        side = max(h, w)
        if h != w:
            square = np.zeros((side, side, 3), dtype=np.uint8)
            top, left = (side - h) // 2, (side - w) // 2
            square[top : top + h, left : left + w] = array
            array = square
        if side == self.size:
            return np.ascontiguousarray(array)
        resized = Image.fromarray(array).resize((self.size, self.size), resample=_RESAMPLE[self.interpolation])
        return np.asarray(resized)


class ToNormalizedTensor:
    """uint8 image → float32 tensor ``(3, H, W)``, ``(x / 255 − mean) / std`` per channel.

    Args:
        mean: per-channel mean on the [0, 1] scale (RGB); ``None`` → ImageNet.
        std: per-channel standard deviation on the [0, 1] scale, each > 0; ``None`` → ImageNet.
    """

    def __init__(
        self, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
    ) -> None:
        self.mean, self.std = _check_stats(mean, std)
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: np.ndarray | Image.Image | torch.Tensor) -> torch.Tensor:
        """Accepts uint8 ``(H, W, 3)`` (array/PIL) or a uint8 tensor ``(3, H, W)``."""
        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
                raise InputError(
                    f"tensor is {tuple(image.shape)} {image.dtype}, expected (3, H, W) uint8", field="image"
                )
            chw = image
        else:
            array = as_rgb_array(image)
            if not (array.flags.writeable and array.flags.c_contiguous):
                array = np.array(array, order="C")  # torch refuses read-only memory (PIL arrays)
            chw = torch.from_numpy(array).permute(2, 0, 1)
        return (chw.to(torch.float32) / 255.0 - self._mean) / self._std


@dataclass(frozen=True)
class FundusGeometry:
    """Where the net's ``size × size`` input came from in the original image (crop, then centred pad, then resize).

    Attributes:
        input_shape: ``(H, W)`` of the original image, pixels.
        crop: ``(top, left, height, width)`` of the field-of-view crop in the original, pixels.
        pad: ``(top, left)`` offset of the crop inside the padded square, pixels.
        side: side of the padded square before resizing, pixels.
        size: side the net sees, pixels.
    """

    input_shape: tuple[int, int]
    crop: tuple[int, int, int, int]
    pad: tuple[int, int]
    side: int
    size: int

    def to_input(self, heat: np.ndarray) -> np.ndarray:
        """Map a ``(size, size)`` map (e.g. Grad-CAM) onto the original ``(H, W)``; float32, 0 outside the crop."""
        heat = np.asarray(heat, dtype=np.float32)
        if heat.shape != (self.size, self.size):
            raise InputError(f"heat map is {heat.shape}, expected ({self.size}, {self.size})", field="heat")
        resized = Image.fromarray(heat).resize((self.side, self.side), Image.Resampling.BILINEAR)  # mode "F"
        square = np.asarray(resized, dtype=np.float32)
        top, left, h, w = self.crop
        out = np.zeros(self.input_shape, dtype=np.float32)
        out[top : top + h, left : left + w] = square[self.pad[0] : self.pad[0] + h, self.pad[1] : self.pad[1] + w]
        return out


class FundusPreprocess:
    """The deterministic fundus pipeline: :class:`CropFundusBorder` → :class:`ResizeSquare` → normalise.

    Used identically in training and inference; :meth:`config` is what the model card stores.

    Args:
        size: side the network sees, pixels.
        mean: per-channel mean, [0, 1] scale.
        std: per-channel std, [0, 1] scale.
        threshold: luminance threshold of the border crop, 0–255.
        interpolation: resize filter (see :class:`ResizeSquare`).
    """

    def __init__(
        self,
        size: int,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        *,
        threshold: float = 10.0,
        interpolation: str = "bilinear",
    ) -> None:
        self.crop = CropFundusBorder(threshold=threshold)
        self.resize = ResizeSquare(size, interpolation=interpolation)
        self.normalize = ToNormalizedTensor(mean, std)

    @property
    def size(self) -> int:
        return self.resize.size

    def square(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """Crop and resize only: uint8 ``(size, size, 3)`` (what augmentation and overlays start from)."""
        return self.resize(self.crop(image))

    def __call__(self, image: np.ndarray | Image.Image) -> torch.Tensor:
        """uint8 ``(H, W, 3)`` → float32 ``(3, size, size)``."""
        return self.normalize(self.square(image))

    def geometry(self, image: np.ndarray | Image.Image) -> FundusGeometry:
        """How ``image`` maps onto the net's square input, to carry heat maps back (see :class:`FundusGeometry`)."""
        array = as_rgb_array(image)
        top, left, h, w = self.crop.box(array)
        side = max(h, w)
        return FundusGeometry(
            input_shape=(array.shape[0], array.shape[1]),
            crop=(top, left, h, w),
            pad=((side - h) // 2, (side - w) // 2),
            side=side,
            size=self.size,
        )

    def config(self) -> dict[str, Any]:
        """Parameters for the model card's input spec (``size``, ``mean``, ``std`` and the crop/resize knobs)."""
        return {
            "size": self.size,
            "mean": list(self.normalize.mean),
            "std": list(self.normalize.std),
            "crop_threshold": self.crop.threshold,
            "interpolation": self.resize.interpolation,
        }


class FundusAugment:
    """Random flips, small rotation, colour jitter and a mild random resized crop, on a uint8 ``(3, H, W)`` tensor.

    The operations are ``torchvision.transforms.v2.functional``; their parameters are drawn from this instance's
    own ``torch.Generator`` (seeded by :meth:`set_random_state`), never from the global RNG. Output has the
    input's shape and dtype.

    Args:
        hflip_p: probability of a horizontal flip.
        vflip_p: probability of a vertical flip.
        max_rotation_deg: rotation drawn uniformly in ±this, degrees (black fill).
        brightness: brightness factor drawn in [1 − b, 1 + b].
        contrast: contrast factor drawn in [1 − c, 1 + c].
        saturation: saturation factor drawn in [1 − s, 1 + s].
        hue: hue shift drawn in [−h, h], fraction of the colour wheel (≤ 0.5).
        crop_scale: area fraction range of the random crop, resized back to the input size.
        crop_ratio: aspect ratio range of the random crop.
        seed: initial seed (see :meth:`set_random_state`).
    """

    def __init__(
        self,
        *,
        hflip_p: float = 0.5,
        vflip_p: float = 0.2,
        max_rotation_deg: float = 15.0,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.1,
        hue: float = 0.0,
        crop_scale: tuple[float, float] = (0.85, 1.0),
        crop_ratio: tuple[float, float] = (0.95, 1.05),
        seed: int = 0,
    ) -> None:
        for name, p in (("hflip_p", hflip_p), ("vflip_p", vflip_p)):
            if not 0 <= p <= 1:
                raise InputError(f"{name} must be in [0, 1], got {p}", field=name)
        for name, j in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= j < 1:
                raise InputError(f"{name} must be in [0, 1), got {j}", field=name)
        if not 0 <= hue <= 0.5:
            raise InputError(f"hue must be in [0, 0.5], got {hue}", field="hue")
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise InputError(f"crop_scale must satisfy 0 < lo ≤ hi ≤ 1, got {crop_scale}", field="crop_scale")
        if not 0 < crop_ratio[0] <= crop_ratio[1]:
            raise InputError(f"crop_ratio must satisfy 0 < lo ≤ hi, got {crop_ratio}", field="crop_ratio")
        self.hflip_p, self.vflip_p = float(hflip_p), float(vflip_p)
        self.max_rotation_deg = abs(float(max_rotation_deg))
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)
        self.hue = float(hue)
        self.crop_scale, self.crop_ratio = crop_scale, crop_ratio
        self.generator = torch.Generator()
        self.set_random_state(seed)

    def set_random_state(self, seed: int) -> FundusAugment:
        """Reseed this instance's generator; equal seeds give equal augmentation sequences."""
        self.generator.manual_seed(int(seed))
        return self

    def _uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.generator))

    def _crop_box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop, as ``RandomResizedCrop`` draws it, from our generator."""
        area = h * w
        log_lo, log_hi = math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])
        for _ in range(10):
            target = area * self._uniform(*self.crop_scale)
            ratio = math.exp(self._uniform(log_lo, log_hi))
            cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (), generator=self.generator))
                left = int(torch.randint(0, w - cw + 1, (), generator=self.generator))
                return top, left, ch, cw
        return 0, 0, h, w

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in [0, 1]) ``(3, H, W)`` → same shape and dtype, randomly augmented."""
        from torchvision.transforms.v2 import functional as tvf

        if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise InputError(f"augment input is {shape}, expected a (3, H, W) tensor", field="image")
        h, w = image.shape[-2:]
        x = image
        if self._uniform(0, 1) < self.hflip_p:
            x = tvf.horizontal_flip(x)
        if self._uniform(0, 1) < self.vflip_p:
            x = tvf.vertical_flip(x)
        if self.max_rotation_deg > 0:
            angle = self._uniform(-self.max_rotation_deg, self.max_rotation_deg)
            x = tvf.rotate(x, angle, interpolation=tvf.InterpolationMode.BILINEAR, fill=0)
        top, left, ch, cw = self._crop_box(h, w)
        if (ch, cw) != (h, w):
            x = tvf.resized_crop(x, top, left, ch, cw, [h, w], antialias=True)
        # Colour jitter in a random order, as torchvision's ColorJitter does.
        for op in torch.randperm(4, generator=self.generator).tolist():
            if op == 0 and self.brightness > 0:
                x = tvf.adjust_brightness(x, self._uniform(1 - self.brightness, 1 + self.brightness))
            elif op == 1 and self.contrast > 0:
                x = tvf.adjust_contrast(x, self._uniform(1 - self.contrast, 1 + self.contrast))
            elif op == 2 and self.saturation > 0:
                x = tvf.adjust_saturation(x, self._uniform(1 - self.saturation, 1 + self.saturation))
            elif op == 3 and self.hue > 0:
                x = tvf.adjust_hue(x, self._uniform(-self.hue, self.hue))
        return x
