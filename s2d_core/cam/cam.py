"""Class activation maps (CAM) from a trained :class:`~s2d_core.models.Classifier`.

Zhou et al., CVPR 2016. For class ``c`` and pixel ``p`` of the last feature map ``F``:

.. math:: \\mathrm{CAM}_c(p) = \\mathrm{ReLU}(W_c^\\top F(p))

upsampled to the image size, optionally averaged over input scales and a horizontal flip
(as IRN and most later work do), then divided by its maximum over the image (plus a small
``eps``) so every class map peaks at 1, and zeroed for classes the image is not tagged with.

Every CAM method in this book has the same call signature, like pytorch-grad-cam's::

    cams = method(images, tags)   # images (B, 3, H, W) in [0, 1]; tags (B, C) multi-hot or None
                                  # -> cams (B, C, H, W) in [0, 1]
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import CAMConfig
from ..models.classifier import Classifier


def cam_from_features(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``ReLU(W^T F)``: features (B, D, h, w), weight (C, D) or (C, D, 1, 1) -> (B, C, h, w) >= 0."""
    if weight.ndim == 4:
        weight = weight.flatten(1)
    if features.ndim != 4 or weight.ndim != 2 or features.shape[1] != weight.shape[1]:
        raise ValueError(f"features (B, D, h, w) and weight (C, D) must agree on D; got "
                         f"{tuple(features.shape)} and {tuple(weight.shape)}")
    return F.relu(torch.einsum("bdhw,cd->bchw", features, weight))


def max_normalise(cams: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Divide each (image, class) map of ``cams`` (B, C, H, W) >= 0 by its maximum -> [0, 1]."""
    return cams / (cams.flatten(2).amax(2)[..., None, None] + eps)


def restrict_to_tags(cams: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor:
    """Zero the maps of classes an image is not tagged with. cams (B, C, H, W), tags (B, C)."""
    if tags is None:
        return cams
    if tags.shape != cams.shape[:2]:
        raise ValueError(f"tags must have shape {tuple(cams.shape[:2])} (B, C) to match cams, got {tuple(tags.shape)}")
    return cams * (tags > 0).to(cams.dtype)[..., None, None]


def scale_flip_average(fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], images: torch.Tensor,
                       tags: torch.Tensor | None = None, scales: Sequence[float] = (1.0,),
                       flip: bool = False) -> torch.Tensor:
    """Average ``fn(x, tags)`` over rescaled (and horizontally flipped) copies of ``images``.

    ``images`` (B, 3, H, W); ``fn`` maps a batch (B', 3, h, w) and its tags (B', C) (or None)
    to maps (B', C, h', w'); every map is resized to (H, W) (bilinear) and un-flipped before
    the average. Returns (B, C, H, W). Gradients flow through (the caller chooses no_grad).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    size = images.shape[-2:]
    total, n = None, 0
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                  align_corners=False, recompute_scale_factor=False)
        batch = torch.cat([x, x.flip(-1)]) if flip else x
        t = None if tags is None else (torch.cat([tags, tags]) if flip else tags)
        maps = F.interpolate(fn(batch, t), size=size, mode="bilinear", align_corners=False)
        if flip:
            maps = maps[: len(x)] + maps[len(x):].flip(-1)
        total = maps if total is None else total + maps
        n += 2 if flip else 1
    return total / n


class CAM:
    """Classifier CAM, multi-scale and flip averaged, max-normalised, restricted to tags.

    >>> cam = CAM(classifier, scales=(1.0, 0.5, 1.5), flip=True)
    >>> cams = cam(images, tags)          # (B, C, H, W) in [0, 1]

    The average is taken over un-normalised maps (resized to the input size), then each
    class map is divided by its maximum (as IRN does): a scale with stronger activations
    weighs more in the average.
    """

    def __init__(self, model: Classifier, scales: Sequence[float] = (1.0,), flip: bool = False) -> None:
        self.model = model
        self.cfg = CAMConfig(scales=tuple(float(s) for s in scales), flip=bool(flip))

    @classmethod
    def from_config(cls, model: Classifier, cfg: CAMConfig) -> "CAM":
        return cls(model, cfg.scales, cfg.flip)

    @property
    def cache_key(self) -> dict | None:
        """Identity of this CAM for the artifact cache (None when the model is not a cached one)."""
        model_key = getattr(self.model, "s2d_key", None)
        return None if model_key is None else {"method": type(self).__name__, "model": model_key, **self.cfg.to_dict()}

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """Scale/flip-averaged ``ReLU(W^T F)`` at input size, before normalisation: (B, C, H, W).

        Keeps gradients and the model's train/eval mode (methods that train through CAMs use it);
        ``__call__`` is the inference entry point (no gradients, eval mode)."""
        model = self.model
        return scale_flip_average(lambda x, _: cam_from_features(model.features(x), model.head.weight),
                                  images, None, self.cfg.scales, self.cfg.flip)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            return restrict_to_tags(max_normalise(self.raw(images)), tags)
        finally:
            self.model.train(was_training)


def compute_cams(method, dataset, batch_size: int = 64, device: str | torch.device = "cpu",
                 progress: bool = True, desc: str = "CAM") -> np.ndarray | list[np.ndarray]:
    """Run a CAM ``method(images, tags)`` over a data set.

    Returns float16 CAMs in [0, 1], in data-set order, restricted to each image's tags:
    one array (N, C, H, W) when all images have one size (the synthetic data; half precision
    keeps 2 000 images x 6 classes x 64^2 at 98 MB), else a list of (C, H_i, W_i) arrays
    (real data, processed one image at a time).
    """
    from torch.utils.data import DataLoader

    from ..data.dataset import collate

    same_size = hasattr(dataset, "config")  # synthetic splits have one image size
    loader = DataLoader(dataset, batch_size=batch_size if same_size else 1, shuffle=False, collate_fn=collate)
    out = []
    for b in tqdm(loader, desc=desc, disable=not progress, leave=False):
        cams = method(b["image"].to(device), b["tags"].to(device))
        out.extend(cams.cpu().numpy().astype(np.float16))
    return np.stack(out) if same_size else out
