"""Promptable segmenters: the real SAM, a tiny SAM of the synthetic world, a random walker.

All three answer the same question with the same call, the shape of segment-anything's
``SamPredictor``::

    predictor.set_image(image)                     # (H, W, 3) uint8 RGB
    masks, scores, logits = predictor.predict(
        point_coords=np.array([[x, y]]),           # (N, 2) pixels, x (column) first
        point_labels=np.array([1]),                # (N,) 1 = object, 0 = not object
        box=None,                                  # (4,) x0, y0, x1, y1
        multimask_output=True)                     # masks (M, H, W) bool, scores (M,)

* :func:`load_sam` builds a real SAM (``vit_b``/``vit_l``/``vit_h``) from a checkpoint file and
  gives ``segment_anything.SamPredictor`` around it.
* :func:`~s2d_core.models.tiny_sam.build_tiny_sam` builds ``segment_anything.modeling.Sam`` from the package's own image
  encoder, prompt encoder and mask decoder at a CPU size (:class:`~s2d_core.models.config.TinySAMConfig`);
  :mod:`s2d_core.train.promptable` pre-trains it on the object world. ``SamPredictor`` then runs
  on it exactly as on the real model: the same code path.
* :class:`RandomWalkerPredictor` is the classical answer (Grady 2006): the points seed a random
  walk on the pixel graph whose edges follow colour differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from torch import nn

from .tiny_sam import build_tiny_sam, decode

__all__ = ["RandomWalkerPredictor", "SAM_CHECKPOINTS", "build_tiny_sam", "decode", "load_sam", "sam_predictor"]

SAM_CHECKPOINTS = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}


def load_sam(model_type: str, checkpoint: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A real SAM from its checkpoint file, with errors that say what to do.

    ``model_type`` is ``vit_b``, ``vit_l`` or ``vit_h``; the checkpoint is Meta's file
    (e.g. ``sam_vit_b_01ec64.pth``), downloaded by the user (this machine cannot).
    """
    if model_type not in SAM_CHECKPOINTS:
        raise ValueError(f"SAM model_type must be one of {sorted(SAM_CHECKPOINTS)}, got {model_type!r}")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"SAM checkpoint {str(path)!r} not found. Download {SAM_CHECKPOINTS[model_type]} from "
            f"https://github.com/facebookresearch/segment-anything#model-checkpoints and pass its path "
            f"(C6Config.sam_checkpoint), or use segmenter='tiny_sam' which needs no download.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"SAM checkpoint {str(path)!r} could not be read as a PyTorch state dict: {e}") from e
    sam = sam_model_registry[model_type]()
    try:
        sam.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ValueError(f"SAM checkpoint {str(path)!r} does not fit model_type={model_type!r} "
                         f"({first}); the {model_type} file is {SAM_CHECKPOINTS[model_type]}") from e
    return sam.to(device).eval()


def sam_predictor(sam: nn.Module):
    """``segment_anything.SamPredictor`` around a (real or tiny) SAM."""
    return SamPredictor(sam.eval())


class RandomWalkerPredictor:
    """A classical promptable segmenter with ``SamPredictor``'s interface (Grady, PAMI 2006).

    Positive points (disks of ``seed_radius`` px) seed the object; negative points and the
    image border (away from positives) seed the background; a box makes everything outside it
    background and seeds its centre. Each pixel gets the probability that a random walk from it,
    with edge weights ``exp(-beta |I_p - I_q|^2)``, reaches an object seed first
    (``skimage.segmentation.random_walker``). One mask per prompt set; its score is the mean
    confidence ``|2p - 1|`` inside it.
    """

    def __init__(self, beta: float = 130.0, seed_radius: int = 1):
        if beta <= 0 or seed_radius < 0:
            raise ValueError(f"RandomWalkerPredictor needs beta > 0 and seed_radius >= 0, got {beta}, {seed_radius}")
        self.beta, self.seed_radius = float(beta), int(seed_radius)
        self.image: np.ndarray | None = None

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """``image`` ``(H, W, 3)`` uint8 (as ``SamPredictor``)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"set_image expects (H, W, 3) RGB, got shape {image.shape}")
        self.image = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
        if image_format == "BGR":
            self.image = self.image[..., ::-1]

    def predict(self, point_coords: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, multimask_output: bool = True,
                return_logits: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """masks ``(1, H, W)`` bool, scores ``(1,)``, probabilities ``(1, H, W)`` (see class doc)."""
        from skimage.segmentation import random_walker  # scikit-image loads slowly: only when asked

        if self.image is None:
            raise RuntimeError("call set_image(image) before predict(...)")
        h, w = self.image.shape[:2]
        seeds = np.zeros((h, w), np.int32)
        yy, xx = np.mgrid[0:h, 0:w]
        pos = np.zeros((h, w), bool)
        neg = np.zeros((h, w), bool)
        if point_coords is not None:
            pts, lab = _check_points(point_coords, point_labels)
            for (x, y), l in zip(pts, lab):
                disk = (yy - y) ** 2 + (xx - x) ** 2 <= self.seed_radius ** 2 + 0.5
                (pos if l == 1 else neg)[disk] = True
        if box is not None:
            x0, y0, x1, y1 = _check_box(box)
            outside = (xx < x0) | (xx > x1) | (yy < y0) | (yy > y1)
            neg |= outside
            cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
            pos |= (yy - cy) ** 2 + (xx - cx) ** 2 <= max(self.seed_radius, 1) ** 2 + 0.5
        if not pos.any():
            raise ValueError("RandomWalkerPredictor needs at least one positive point (label 1) or a box")
        if box is None:  # the border is background unless a positive point is close to it
            border = np.zeros((h, w), bool)
            border[[0, -1], :] = border[:, [0, -1]] = True
            near = np.zeros((h, w), bool)
            for y, x in zip(*np.nonzero(pos)):
                near |= (yy - y) ** 2 + (xx - x) ** 2 <= 16
            neg |= border & ~near
        seeds[neg] = 2
        seeds[pos] = 1
        prob = random_walker(self.image, seeds, beta=self.beta, mode="bf", channel_axis=-1,
                             return_full_prob=True)[0]
        mask = prob > 0.5
        score = float(np.abs(2 * prob[mask] - 1).mean()) if mask.any() else 0.0
        return mask[None], np.array([score]), prob[None]


def _check_points(point_coords, point_labels) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(point_coords, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"point_coords must be (N, 2) in (x, y) order, got shape {pts.shape}")
    if point_labels is None:
        raise ValueError("point_coords needs point_labels (N,) with 1 = object, 0 = background")
    lab = np.asarray(point_labels)
    if lab.shape != (len(pts),):
        raise ValueError(f"point_labels must have shape ({len(pts)},), got {lab.shape}")
    return pts, lab


def _check_box(box) -> tuple[float, float, float, float]:
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or b[2] < b[0] or b[3] < b[1]:
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {np.asarray(box).tolist()}")
    return tuple(b)
