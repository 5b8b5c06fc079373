"""Where does a CAM fire? Diagnostics that use the synthetic world's hidden maps.

The synthetic data know which pixels are the class emblem (the discriminative part) and
which background pixels are the class's usual context (water under a sailor). These maps are
for *diagnosis only*: no method may train on them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..arrays import to_numpy
from ..pseudo.masks import seeds_from_cam

REGIONS = ("emblem", "object_rest", "class_context", "other")
REGION_MEANS = ("emblem", "object_rest", "class_context", "other_background", "other_objects")


def cam_mass(cams: Sequence, tags: Sequence, masks: Sequence, emblems: Sequence, contexts: Sequence) -> dict:
    """Share of total CAM mass on each region, summed over images and tagged classes.

    For a tagged class ``c`` the regions partition the image: the emblem of ``c``, the rest of
    the objects of class ``c``, the background pixels of ``c``'s context, and everything else
    (other objects, other background). A CAM that found whole objects would put nearly all of
    its mass on the first two.

    Parameters
    ----------
    cams : (C, H, W) per image, values >= 0 (channel ``c-1`` = class ``c``).
    tags : (C,) multi-hot per image. masks, emblems, contexts : (H, W) label maps per image.

    Returns
    -------
    ``{region: fraction}`` with the fractions summing to 1.
    """
    total = np.zeros(len(REGIONS))
    for cam, tag, m, e, c in zip(cams, tags, masks, emblems, contexts):
        cam, m, e, c = to_numpy(cam).astype(np.float64), to_numpy(m), to_numpy(e), to_numpy(c)
        for k in np.nonzero(to_numpy(tag))[0]:
            w, cls = cam[k], k + 1
            emblem = e == cls
            obj = (m == cls) & ~emblem
            ctx = (m == 0) & (c == cls)
            total += [w[emblem].sum(), w[obj].sum(), w[ctx].sum(), w[~(emblem | obj | ctx)].sum()]
    if total.sum() == 0:
        raise ValueError("all CAMs are zero on the tagged classes: nothing to attribute")
    return dict(zip(REGIONS, total / total.sum()))


def cam_region_means(cams: Sequence, tags: Sequence, masks: Sequence, emblems: Sequence,
                     contexts: Sequence, threshold: float | None = None) -> dict:
    """Mean CAM value of a tagged class over five regions, pooled over images and classes.

    With ``threshold``, the share of each region where the map is above it instead (what the
    seed rule at that background threshold claims for the class; maps that are calibrated
    differently, e.g. probabilities vs max-normalised CAMs, compare better this way).

    Regions for a tagged class ``c``: its emblem, the rest of its objects, the background
    pixels of its context, the rest of the background, and objects of other classes. Unlike
    :func:`cam_mass` this does not depend on how large each region is: a complete CAM is
    high on both object regions, a CAM that does not leak is equally low on both background
    regions. Inputs as for :func:`cam_mass`.

    Returns
    -------
    ``{region: mean value}`` (NaN for a region that never occurs).
    """
    total, count = np.zeros(len(REGION_MEANS)), np.zeros(len(REGION_MEANS))
    for cam, tag, m, e, c in zip(cams, tags, masks, emblems, contexts):
        cam, m, e, c = to_numpy(cam).astype(np.float64), to_numpy(m), to_numpy(e), to_numpy(c)
        for k in np.nonzero(to_numpy(tag))[0]:
            w, cls = cam[k], k + 1
            if threshold is not None:
                w = (w > threshold).astype(np.float64)
            emblem = e == cls
            regions = (emblem, (m == cls) & ~emblem, (m == 0) & (c == cls), (m == 0) & (c != cls),
                       (m > 0) & (m != cls) & (m != 255))
            for j, r in enumerate(regions):
                total[j] += w[r].sum()
                count[j] += r.sum()
    with np.errstate(invalid="ignore"):
        return dict(zip(REGION_MEANS, total / count))


def per_image_miou(preds: Sequence, masks: Sequence, ignore_index: int = 255) -> np.ndarray:
    """mIoU of each image over the classes present in its prediction or ground truth: (N,)."""
    out = []
    for p, m in zip(preds, masks):
        p, m = to_numpy(p).astype(np.int64), to_numpy(m).astype(np.int64)
        valid = m != ignore_index
        ious = []
        for cls in np.union1d(np.unique(p[valid]), np.unique(m[valid])):
            inter = ((p == cls) & (m == cls) & valid).sum()
            union = (((p == cls) | (m == cls)) & valid).sum()
            ious.append(inter / union)
        out.append(float(np.mean(ious)) if ious else np.nan)
    return np.asarray(out)


def seed_miou_per_image(cams: Sequence, tags: Sequence, masks: Sequence, threshold: float) -> np.ndarray:
    """Per-image mIoU of the CAM seeds at one background threshold: (N,)."""
    return per_image_miou([seeds_from_cam(c, t, threshold) for c, t in zip(cams, tags)], masks)
