"""Card-driven preprocessing of single-image classifiers (fundus DR, OCT, MedMNIST) and the Ben-Graham filter.

Why card-driven: the DR model trained on APTOS images that were already Ben-Graham filtered must see a raw ODIR
photograph the same way, and an OCT model must see grey B-scans the way it was trained; the training task writes
:meth:`ImagePreprocess.config` into the model card and the analyzer rebuilds the very same pipeline with
:meth:`ImagePreprocess.from_config`, so train and serve cannot drift.

The pipeline, in order: optional grey conversion (OCT: luminance replicated to 3 channels, as ImageNet backbones
expect) → optional fundus border crop → fit to a square (``pad`` keeps the aspect ratio with black, ``stretch``
resizes each axis) → optional Ben-Graham filter at the net's size → scale to [0, 1] and normalise.
:meth:`ImagePreprocess.geometry` maps a heat map from the net's square back onto the uploaded image.

Ben-Graham filter (Graham B., Kaggle Diabetic Retinopathy Detection, 2015, competition report): subtract the local
average colour, ``4·I − 4·G_σ(I) + 128``, which removes illumination and camera colour differences and enhances
lesions and vessels. The APTOS images in the shared sample are the Kaggle "Gaussian filtered 224×224" derivative,
made with σ = 10 px at 224 px, hence the default σ = 10/224 of the side.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from vitalens.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ben_graham",
    "looks_ben_graham_filtered",
    "BenGraham",
    "ImageGeometry",
    "ImagePreprocess",
    "to_grey_rgb",
    "BEN_GRAHAM_SIGMA_FRACTION",
]

logger = logging.getLogger(__name__)

#: σ of the Ben-Graham blur as a share of the image side: 10 px at 224 px (the APTOS derivative's setting).
BEN_GRAHAM_SIGMA_FRACTION = 10.0 / 224.0


def ben_graham(image: np.ndarray, sigma: float) -> np.ndarray:
    """``clip(4·I − 4·G_σ(I) + 128)`` per channel on a uint8 ``(H, W, 3)`` (or ``(H, W)``) image.

    Args:
        image: uint8 array.
        sigma: Gaussian σ in pixels (> 0).

    Returns:
        uint8 array of the same shape; a flat image becomes uniform grey 128.
    """
    from scipy.ndimage import gaussian_filter

    if sigma <= 0:
        raise InputError(f"Ben-Graham sigma must be > 0 px, got {sigma}", field="sigma")
    a = np.asarray(image, dtype=np.float32)
    sig = (sigma, sigma, 0) if a.ndim == 3 else (sigma, sigma)
    blurred = gaussian_filter(a, sig, mode="nearest")
    return np.clip(np.rint(4.0 * a - 4.0 * blurred + 128.0), 0, 255).astype(np.uint8)


def looks_ben_graham_filtered(image: np.ndarray, *, sigma_fraction: float = BEN_GRAHAM_SIGMA_FRACTION) -> bool:
    """True when ``image`` already is a Ben-Graham-filtered picture (local mean ≈ grey 128 almost everywhere).

    A raw photograph has a black border and an orange-red field (local means far from 128); a filtered one is
    mid-grey at every scale above σ. Used so that an already filtered upload is not filtered twice.
    """
    from scipy.ndimage import gaussian_filter

    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    sigma = max(1.0, sigma_fraction * max(a.shape[:2]))
    local = gaussian_filter(a, (sigma, sigma, 0), mode="nearest")
    # Measured on the shared images: every filtered APTOS image has ≥ 99.6 % of its local means within ±40 of
    # grey; raw ODIR and DRIVE photographs have ≤ 24 %.
    near_grey = (np.abs(local - 128.0) < 40.0).all(axis=2)
    return bool(near_grey.mean() > 0.9)


class BenGraham:
    """The Ben-Graham local-average subtraction as a transform, σ relative to the image side.

    Args:
        sigma_fraction: σ as a share of the longer side (default 10/224).
        skip_if_filtered: leave an image that :func:`looks_ben_graham_filtered` unchanged (logged at debug level).
        mask_border: set the black border of a photograph (luminance ≤ 10), widened by σ, to grey 128 after
            filtering, as Graham did: otherwise the blurred border leaves a bright ring the net would learn.
    """

    def __init__(
        self,
        sigma_fraction: float = BEN_GRAHAM_SIGMA_FRACTION,
        *,
        skip_if_filtered: bool = True,
        mask_border: bool = True,
    ) -> None:
        if not 0 < sigma_fraction < 0.5:
            raise InputError(f"sigma_fraction must be in (0, 0.5), got {sigma_fraction}", field="sigma_fraction")
        self.sigma_fraction = float(sigma_fraction)
        self.skip_if_filtered = bool(skip_if_filtered)
        self.mask_border = bool(mask_border)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        a = np.asarray(image)
        if self.skip_if_filtered and looks_ben_graham_filtered(a, sigma_fraction=self.sigma_fraction):
            logger.debug("Ben-Graham: image already filtered; left unchanged")
            return a
        sigma = self.sigma_fraction * max(a.shape[:2])
        out = ben_graham(a, sigma)
        if self.mask_border:
            from scipy.ndimage import binary_erosion

            lum = a.astype(np.float32) if a.ndim == 2 else a[..., :3].astype(np.float32).mean(axis=2)
            fov = lum > 10.0
            if fov.mean() < 0.999:
                fov = binary_erosion(fov, iterations=max(1, int(round(sigma))))
                out[~fov] = 128
        return out

    def config(self) -> dict[str, Any]:
        return {
            "sigma_fraction": self.sigma_fraction,
            "skip_if_filtered": self.skip_if_filtered,
            "mask_border": self.mask_border,
        }


def to_grey_rgb(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of a uint8 RGB (or grey) image, replicated to ``(H, W, 3)``."""
    a = np.asarray(image)
    if a.ndim == 2:
        grey = a
    else:
        lum = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        grey = np.clip(np.rint(lum), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@dataclass(frozen=True)
class ImageGeometry:
    """Where the net's ``size × size`` input came from in the uploaded image.

    Attributes:
        input_shape: ``(H, W)`` of the uploaded image, pixels.
        crop: ``(top, left, height, width)`` kept of it (the whole image without a border crop).
        fit: ``pad`` (centred in a black square, aspect kept) or ``stretch`` (each axis resized).
        size: side the net sees, pixels.
    """

    input_shape: tuple[int, int]
    crop: tuple[int, int, int, int]
    fit: Literal["pad", "stretch"]
    size: int

    def to_input(self, heat: np.ndarray) -> np.ndarray:
        """Map a ``(size, size)`` map onto the uploaded ``(H, W)``; float32, 0 outside the crop."""
        heat = np.asarray(heat, dtype=np.float32)
        if heat.shape != (self.size, self.size):
            raise InputError(f"heat map is {heat.shape}, expected ({self.size}, {self.size})", field="heat")
        top, left, h, w = self.crop
        if self.fit == "stretch":
            region = np.asarray(Image.fromarray(heat).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
        else:
            side = max(h, w)
            square = np.asarray(Image.fromarray(heat).resize((side, side), Image.Resampling.BILINEAR), np.float32)
            pt, pl = (side - h) // 2, (side - w) // 2
            region = square[pt : pt + h, pl : pl + w]
        out = np.zeros(self.input_shape, dtype=np.float32)
        out[top : top + h, left : left + w] = region
        return out


class ImagePreprocess:
    """The deterministic pipeline of one single-image model (see the module text); :meth:`config` goes in the card.

    Args:
        size: side the net sees, pixels.
        mean: per-channel mean on the [0, 1] scale (RGB).
        std: per-channel std on the [0, 1] scale.
        grayscale: convert to luminance replicated to 3 channels (OCT, chest X-ray).
        crop_border: crop a fundus photograph to its bright field of view first.
        fit: ``pad`` or ``stretch`` to the square.
        ben_graham: the filter's settings (``{"sigma_fraction", "skip_if_filtered"}``), or None for none.
        interpolation: ``bilinear``, ``bicubic``, ``area`` or ``nearest``.
    """

    _RESAMPLE = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "area": Image.Resampling.BOX,
        "nearest": Image.Resampling.NEAREST,
    }

    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        grayscale: bool = False,
        crop_border: bool = False,
        fit: Literal["pad", "stretch"] = "pad",
        ben_graham: dict[str, Any] | None = None,
        interpolation: str = "bilinear",
    ) -> None:
        from vitalens.data.transforms import CropFundusBorder

        if int(size) < 8:
            raise InputError(f"size must be ≥ 8 px, got {size}", field="size")
        if fit not in ("pad", "stretch"):
            raise InputError(f"fit must be 'pad' or 'stretch', got {fit!r}", field="fit")
        if interpolation not in self._RESAMPLE:
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("interpolation", interpolation, self._RESAMPLE)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError(f"mean/std need 3 values and std > 0, got {list(mean)} / {list(std)}", field="mean")
        self.size = int(size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.grayscale = bool(grayscale)
        self.crop = CropFundusBorder() if crop_border else None
        self.fit: Literal["pad", "stretch"] = fit
        self.ben_graham = BenGraham(**ben_graham) if ben_graham is not None else None
        self.interpolation = interpolation

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImagePreprocess:
        """Rebuild the pipeline a card describes (the inverse of :meth:`config`)."""
        try:
            return cls(**config)
        except TypeError as exc:
            raise InputError(f"card preprocessing {config} is not understood: {exc}", field="card") from exc

    def config(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mean": list(self.mean),
            "std": list(self.std),
            "grayscale": self.grayscale,
            "crop_border": self.crop is not None,
            "fit": self.fit,
            "ben_graham": self.ben_graham.config() if self.ben_graham else None,
            "interpolation": self.interpolation,
        }

    def _rgb(self, image: np.ndarray | Image.Image) -> np.ndarray:
        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("L" if self.grayscale else "RGB"))
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise InputError(
                f"image is {a.shape} {a.dtype}, expected uint8 (H, W) grey or (H, W, 3) RGB", field="image"
            )
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise InputError(f"image is {a.shape}, expected non-empty", field="image")
        if self.grayscale:
            return to_grey_rgb(a)
        if a.ndim == 2:
            return np.repeat(a[..., None], 3, axis=2)
        return a[..., :3]

    def _crop_box(self, rgb: np.ndarray) -> tuple[int, int, int, int]:
        return self.crop.box(rgb) if self.crop is not None else (0, 0, rgb.shape[0], rgb.shape[1])

    def square(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """Everything but the normalisation: uint8 ``(size, size, 3)`` (augmentation and overlays start here)."""
        rgb = self._rgb(image)
        top, left, h, w = self._crop_box(rgb)
        rgb = rgb[top : top + h, left : left + w]
        resample = self._RESAMPLE[self.interpolation]
        if self.fit == "pad" and h != w:
            side = max(h, w)
            canvas = np.zeros((side, side, 3), dtype=np.uint8)
            canvas[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = rgb
            rgb = canvas
        if rgb.shape[:2] != (self.size, self.size):
            rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((self.size, self.size), resample))
        if self.ben_graham is not None:
            rgb = self.ben_graham(rgb)
        return np.ascontiguousarray(rgb)

    def normalize(self, square: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(S, S, 3)`` array or ``(3, S, S)`` tensor → float32 ``(3, S, S)`` normalised."""
        import torch

        chw = square if isinstance(square, torch.Tensor) else torch.from_numpy(np.array(square)).permute(2, 0, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return (chw.to(torch.float32) / 255.0 - mean) / std

    def __call__(self, image: np.ndarray | Image.Image) -> torch.Tensor:
        return self.normalize(self.square(image))

    def geometry(self, image: np.ndarray | Image.Image) -> ImageGeometry:
        rgb = self._rgb(image)
        return ImageGeometry(
            input_shape=(int(rgb.shape[0]), int(rgb.shape[1])),
            crop=self._crop_box(rgb),
            fit=self.fit,
            size=self.size,
        )
