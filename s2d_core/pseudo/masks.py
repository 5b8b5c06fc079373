"""From CAMs to pseudo masks for the segmentation network.

* plain threshold: the seed rule of :func:`s2d_core.eval.seeds.seeds_from_cam` (background
  score ``t``; argmax over the tagged classes elsewhere);
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
import torch
from tqdm.auto import tqdm

from ..config import PseudoMaskConfig
from ..eval.seeds import seeds_from_cam
from .crf import crf_labels

IGNORE = 255


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


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
    crf : a :class:`~s2d_core.config.CRFConfig` to refine with, or None.
    """
    cam, tags = _np(cam).astype(np.float32), _np(tags)
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
    for i in tqdm(range(len(cams)), desc="pseudo masks" + (" + CRF" if cfg.crf else ""),
                  disable=not progress, leave=False):
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
        m = _np(m)
        n += m.size
        lab += int((m != IGNORE).sum())
    return lab / max(n, 1)
