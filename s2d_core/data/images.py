"""Image layout helpers shared by the stages that hand images to non-torch code."""

from __future__ import annotations

import numpy as np
import torch


def to_hwc(image) -> np.ndarray:
    """An image as a NumPy array (H, W, 3), from (3, H, W) or (H, W, 3), tensor or array.

    Values and dtype are left as they are; raises ``ValueError`` naming the shape otherwise.
    """
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[-1] != 3:
        x = x.transpose(1, 2, 0)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"image must have shape (3, H, W) or (H, W, 3), got {x.shape}")
    return x
