"""Array conversions every stage shares: tensors to NumPy, image layouts, 8-bit images.

One helper each, so that every stage hands images to non-torch code (the dense CRF, SAM's
predictor, matplotlib) in the same way and rounds them the same way.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_hwc", "to_numpy", "to_uint8"]


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, with or without gradient) or array-like as a NumPy array."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def to_hwc(image) -> np.ndarray:
    """An image as a NumPy array (H, W, 3), from (3, H, W) or (H, W, 3), tensor or array.

    Values and dtype are left as they are; raises ``ValueError`` naming the shape otherwise.
    """
    x = to_numpy(image)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[-1] != 3:
        x = x.transpose(1, 2, 0)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"image must have shape (3, H, W) or (H, W, 3), got {x.shape}")
    return x


def to_uint8(image) -> np.ndarray:
    """An RGB image as ``(H, W, 3)`` uint8, C-contiguous: the input of SAM's predictor and the CRF.

    ``image``: (3, H, W) or (H, W, 3), tensor or array; uint8 is returned as it is, float
    values must lie in [0, 1] and are mapped to :math:`\\mathrm{round}(255 x)` (NumPy's
    round-half-to-even). A float image outside [0, 1] is an error, not clipped: it is a sign of
    an image normalised for a network being passed where a picture is expected.
    """
    x = to_hwc(image)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {x.dtype}")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 1.0 + 1e-6:
        raise ValueError(f"a float image must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]")
    return np.ascontiguousarray(np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8))
