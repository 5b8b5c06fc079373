"""From CAMs to pseudo masks for the segmentation network.

* plain threshold, the seed rule (:func:`seeds_from_cam`): the background gets a constant score
  ``t`` and each pixel takes the argmax over ``[t, CAM_c for c in the image's tags]``

  .. math::  \\hat y(p) = \\begin{cases} \\arg\\max_{c \\in \\mathcal{T}} \\mathrm{CAM}_c(p)
             & \\text{if } \\max_{c \\in \\mathcal{T}} \\mathrm{CAM}_c(p) > t \\\\ 0 & \\text{otherwise} \\end{cases}

  (the same rule evaluates CAM seeds, :mod:`s2d_core.eval.seeds`);
* confidence bands (IRN, Ahn et al. CVPR 2019): confident foreground where the best tagged
  score is ``> high``, confident background where it is ``<= low``, and ``255`` (ignored by the
  segmentation loss) in between, so the network is not taught the CAM's guesses (ties go to
  background, as in the seed rule);
* optionally each thresholded map refined by a dense CRF (:mod:`s2d_core.pseudo.crf`), as
  IRN does: ``fg = CRF(threshold at high)``, ``bg = CRF(threshold at low)``; a pixel is
  foreground where ``fg`` says so, background where both say background, ignored otherwise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..arrays import to_numpy
from ..progress import progress as progress_bar
from .config import PseudoMaskConfig
from .crf import crf_labels

IGNORE = 255
"""Label of pixels the segmentation loss ignores (VOC's void)."""


def tag_argmax(cam: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max score and its class label (1..C) over the tagged classes, each ``(H, W)``; ``cam``
    ``(C, H, W)`` over foreground classes, ``tags`` ``(C,)``."""
    if cam.ndim != 3:
        raise ValueError(f"cam must have shape (C, H, W) over foreground classes, got {cam.shape}")
    if tags.shape != (cam.shape[0],):
        raise ValueError(f"tags must have shape ({cam.shape[0]},) to match cam {cam.shape}, got {tags.shape}")
    if np.isnan(cam).any():
        raise ValueError("cam contains NaN")
    masked = np.where(tags[:, None, None] > 0, cam, -np.inf)
    best = masked.argmax(0)
    score = np.take_along_axis(masked, best[None], 0)[0]
    return score, best + 1


def seeds_from_cam(cam, tags, threshold: float) -> np.ndarray:
    """Label map ``(H, W)`` int64 from a CAM ``(C, H, W)`` (values in [0, 1], foreground
    classes only: channel ``c-1`` is class ``c``) and tags ``(C,)``: background where the
    best tagged score is ``<= threshold`` (ties go to background, as ``argmax`` over
    ``[t, CAM]`` does)."""
    score, label = tag_argmax(to_numpy(cam).astype(np.float64), to_numpy(tags))
    return np.where(score > threshold, label, 0).astype(np.int64)


def pseudo_mask(cam, tags, threshold: float, bands: tuple[float, float] | None = None,
                image=None, crf=None) -> np.ndarray:
    """One pseudo mask (H, W) uint8: labels 0..C, 255 = ignore.

    Parameters
    ----------
    cam : (C, H, W) CAM in [0, 1] over foreground classes (channel c-1 = class c).
    tags : (C,) multi-hot.
    threshold : background score used when ``bands`` is None.
    bands : ``(low, high)`` confidence bands, or None.
    image : (3, H, W) in [0, 1]; needed only with ``crf``.
    crf : a :class:`~s2d_core.pseudo.config.CRFConfig` to refine with, or None.
    """
    cam, tags = to_numpy(cam).astype(np.float32), to_numpy(tags)
    if crf is not None and image is None:
        raise ValueError("CRF refinement needs the image")
    refine = (lambda lab: crf_labels(image, lab, crf)) if crf is not None else (lambda lab: lab)
    if bands is None:
        return refine(seeds_from_cam(cam, tags, threshold)).astype(np.uint8)
    low, high = bands
    fg = refine(seeds_from_cam(cam, tags, high))
    bg = refine(seeds_from_cam(cam, tags, low))
    out = np.full(fg.shape, IGNORE, np.uint8)
    out[fg > 0] = fg[fg > 0]
    out[(fg == 0) & (bg == 0)] = 0
    return out


def make_pseudo_masks(cams: Sequence, tags: Sequence, threshold: float, cfg: PseudoMaskConfig = PseudoMaskConfig(),
                      images: Sequence | None = None, progress: bool = True) -> np.ndarray | list[np.ndarray]:
    """Pseudo masks for a whole split: (N, H, W) uint8 (a list when sizes differ).

    ``threshold`` is the background score (the caller resolves ``cfg.threshold = None`` to the
    sweep's best); ``images`` (N, 3, H, W) or a data set is needed when ``cfg.crf``.
    """
    if cfg.crf and images is None:
        raise ValueError("cfg.crf=True needs images (the CRF's pairwise terms look at colours)")
    if len(tags) != len(cams):
        raise ValueError(f"{len(cams)} CAMs but {len(tags)} tag vectors")
    out = []
    for i in progress_bar(range(len(cams)), desc="pseudo masks" + (" + CRF" if cfg.crf else ""), disable=not progress):
        img = None
        if cfg.crf:
            img = images[i]
            img = img["image"] if isinstance(img, dict) else img
        out.append(pseudo_mask(cams[i], tags[i], threshold, cfg.bands, img, cfg.crf_config if cfg.crf else None))
    shapes = {m.shape for m in out}
    return np.stack(out) if len(shapes) == 1 else out


def label_coverage(masks) -> float:
    """Fraction of pixels that carry a label (not 255), in [0, 1]."""
    n = lab = 0
    for m in masks:
        m = to_numpy(m)
        n += m.size
        lab += int((m != IGNORE).sum())
    return lab / max(n, 1)


__all__ = ["IGNORE", "label_coverage", "make_pseudo_masks", "pseudo_mask", "seeds_from_cam", "tag_argmax"]
