"""Online noise injection for ECGs: the artefacts of real recordings, applied at random during training.

Why: a screening model must not read noise as disease. Real ECGs carry Gaussian (EMG) noise, baseline wander
(breathing, movement), powerline interference (50 or 60 Hz), gain differences, electrode-motion bursts and
detached leads; training on signals corrupted this way (and on extra noisy *normal* records labelled NORM, the
design's option) teaches the net that these are not findings. ``bench/ecg_robustness.py`` checks the result.

Every transform is a small callable owning its ``np.random.Generator`` (MONAI ``Randomizable`` style), seeded
through ``set_random_state(seed)``; nothing touches the global RNG.

Example:
    >>> aug = ECGNoise(fs_hz=100.0).set_random_state(0)
    >>> noisy = aug(signal)          # (12, 1000) float32 in mV   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from vitalens.errors import InputError

__all__ = ["ECGNoise", "NoiseConfig"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoiseConfig:
    """Probabilities and magnitudes of each artefact (amplitudes in mV; ``prob`` is per record).

    Attributes:
        gaussian_prob, gaussian_std_mv: white noise, std drawn in ``(0, gaussian_std_mv]``.
        wander_prob, wander_mv, wander_hz: baseline wander, amplitude up to ``wander_mv`` at 0.05–``wander_hz`` Hz.
        powerline_prob, powerline_mv, powerline_hz: mains hum at one of ``powerline_hz``.
        scale_prob, scale_range: one gain factor per lead in ``scale_range``.
        burst_prob, burst_mv, burst_s: electrode-motion bursts (low-pass noise up to ``burst_mv``, ≤ ``burst_s`` s).
        dropout_prob, dropout_max_leads: leads set to zero (a detached electrode).
    """

    gaussian_prob: float = 0.5
    gaussian_std_mv: float = 0.05
    wander_prob: float = 0.5
    wander_mv: float = 0.3
    wander_hz: float = 0.5
    powerline_prob: float = 0.3
    powerline_mv: float = 0.1
    powerline_hz: tuple[float, ...] = (50.0, 60.0)
    scale_prob: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.2)
    burst_prob: float = 0.2
    burst_mv: float = 0.5
    burst_s: float = 1.0
    dropout_prob: float = 0.1
    dropout_max_leads: int = 2


class ECGNoise:
    """Corrupt one ECG ``(leads, samples)`` in mV with randomly chosen artefacts.

    Args:
        fs_hz: sampling rate of the signals, Hz (powerline above Nyquist is aliased the way an ADC would).
        config: probabilities and magnitudes; the defaults are moderate.
        seed: seeds the instance's generator (change it with :meth:`set_random_state`).
    """

    def __init__(self, fs_hz: float, config: NoiseConfig | None = None, seed: int | None = None) -> None:
        if fs_hz <= 0:
            raise InputError(f"fs_hz must be positive, got {fs_hz}", field="fs_hz")
        self.fs_hz = float(fs_hz)
        self.config = config or NoiseConfig()
        self.rng = np.random.default_rng(seed)

    def set_random_state(self, seed: int | None = None) -> ECGNoise:
        """Reseed this instance's generator (same seed → same corruption sequence); returns ``self``."""
        self.rng = np.random.default_rng(seed)
        return self

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """A corrupted float32 copy of ``signal`` ``(leads, samples)`` in mV (the input is not modified)."""
        if signal.ndim != 2:
            raise InputError(f"ECG must be (leads, samples), got shape {signal.shape}", field="ecg")
        c, rng = self.config, self.rng
        x = np.array(signal, dtype=np.float32, copy=True)
        n_leads, n = x.shape
        t = np.arange(n, dtype=np.float32) / self.fs_hz
        if rng.random() < c.gaussian_prob:
            x += rng.normal(0.0, rng.uniform(0.0, c.gaussian_std_mv), size=x.shape).astype(np.float32)
        if rng.random() < c.wander_prob:
            f = rng.uniform(0.05, c.wander_hz)
            amp = rng.uniform(0.0, c.wander_mv, size=(n_leads, 1))
            phase = rng.uniform(0.0, 2 * np.pi, size=(n_leads, 1))
            x += (amp * np.sin(2 * np.pi * f * t[None, :] + phase)).astype(np.float32)
        if rng.random() < c.powerline_prob:
            f = float(rng.choice(c.powerline_hz))
            amp = rng.uniform(0.0, c.powerline_mv)
            x += (amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))).astype(np.float32)[None, :]
        if rng.random() < c.scale_prob:
            x *= rng.uniform(*c.scale_range, size=(n_leads, 1)).astype(np.float32)
        if rng.random() < c.burst_prob:
            length = max(2, int(rng.uniform(0.1, c.burst_s) * self.fs_hz))
            start = int(rng.integers(0, max(1, n - length)))
            kernel = np.ones(max(1, int(0.02 * self.fs_hz))) / max(1, int(0.02 * self.fs_hz))
            burst = np.convolve(rng.normal(0.0, 1.0, size=length), kernel, mode="same")
            burst = burst / max(float(np.abs(burst).max()), 1e-6) * rng.uniform(0.0, c.burst_mv)
            leads = rng.random(n_leads) < 0.5
            x[leads, start : start + length] += burst[: min(length, n - start)].astype(np.float32)
        if rng.random() < c.dropout_prob and c.dropout_max_leads > 0:
            k = int(rng.integers(1, c.dropout_max_leads + 1))
            x[rng.choice(n_leads, size=min(k, n_leads), replace=False)] = 0.0
        return x
