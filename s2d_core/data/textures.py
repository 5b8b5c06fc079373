"""Procedural textures and shapes used by the synthetic world.

Every texture is a function of pixel coordinates returning a pattern ``p`` of shape
``(H, W)`` with values in ``[0, 1]``; :func:`colourise` turns it into RGB by blending two
colours, ``rgb = (1 - p) * c0 + p * c1``. Periods are in pixels.
"""

from __future__ import annotations

import colorsys

import numpy as np
from scipy import ndimage

TEXTURES = ("flat", "stripes", "dots", "checker", "noise", "waves", "gradient")


def texture(kind: str, yy: np.ndarray, xx: np.ndarray, period: float, angle: float,
            rng: np.random.Generator) -> np.ndarray:
    """Pattern ``(H, W)`` in ``[0, 1]`` of the given kind.

    Parameters
    ----------
    kind : one of :data:`TEXTURES`.
    yy, xx : ``(H, W)`` pixel coordinates (float).
    period : spatial period in pixels (>= 2).
    angle : orientation in radians (stripes, waves, gradient).
    rng : source of the random phase / noise, so two objects of the same style differ.
    """
    period = max(float(period), 2.0)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "flat":
        return np.full(yy.shape, 0.2, dtype=np.float32) + 0.1 * _smooth_noise(yy.shape, period * 2, rng)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period + phase)
    if kind == "waves":
        wobble = 0.35 * period * np.sin(2 * np.pi * v / (2.5 * period) + phase)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (u + wobble) / period)
    if kind == "dots":
        off = rng.uniform(0, period, size=2)
        cy = np.mod(yy + off[0], period) - period / 2
        cx = np.mod(xx + off[1], period) - period / 2
        r = np.hypot(cy, cx) / (0.32 * period)
        return np.clip(1.5 - r, 0.0, 1.0)
    if kind == "checker":
        off = rng.uniform(0, period, size=2)
        return (np.floor((u + off[0]) / period) + np.floor((v + off[1]) / period)) % 2
    if kind == "noise":
        return _smooth_noise(yy.shape, period / 2.5, rng)
    if kind == "gradient":
        span = max(float(np.ptp(u)), 1.0)
        return (u - u.min()) / span * 0.7 + 0.3 * _smooth_noise(yy.shape, period, rng)
    raise ValueError(f"unknown texture kind {kind!r}: expected one of {TEXTURES}")


def _smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to ``[0, 1]``."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(sigma, 0.5), mode="wrap")
    lo, hi = n.min(), n.max()
    return (n - lo) / (hi - lo + 1e-8)


def colourise(p: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Blend two RGB colours (each ``(3,)`` in [0, 1]) by a pattern ``(H, W)`` -> ``(H, W, 3)``."""
    return (1.0 - p)[..., None] * np.asarray(c0)[None, None] + p[..., None] * np.asarray(c1)[None, None]


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB ``(3,)`` in [0, 1] from hue, saturation, value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def polar_blob(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float,
               aspect: float, angle: float, harmonics: np.ndarray, softness: float) -> np.ndarray:
    """Soft alpha ``(H, W)`` in ``[0, 1]`` of a star-shaped blob.

    The outline in polar coordinates is ``r(theta) = radius * (1 + sum_k a_k cos(k theta + phi_k))``
    after stretching one axis by ``aspect``; ``harmonics`` is a ``(K, 3)`` array of rows
    ``(k, a_k, phi_k)``. The alpha is a logistic ramp of width ``softness`` pixels across the
    outline, which gives the soft, anti-aliased boundary of real photographs.
    """
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) * aspect
    d = np.hypot(u, v)
    theta = np.arctan2(v, u)
    r = np.ones_like(d)
    for k, a, phi in harmonics:
        r += a * np.cos(k * theta + phi)
    r *= radius
    return 1.0 / (1.0 + np.exp(-np.clip((r - d) / max(softness, 1e-3), -30, 30)))
