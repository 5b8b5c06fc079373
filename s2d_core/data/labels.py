"""Dense label maps from every kind of sparse label, for the learners that take any of them (SPML
and its baselines): tags, points, scribbles, boxes, full masks.

One convention for all: a (H, W) int64 map with classes ``0..C-1`` (0 = background) where a label
says something, :data:`UNLABELLED` where it says nothing, :data:`IGNORE` for padding.

**Points and background.** A point per object says nothing about background, and a learner given
only foreground labels labels everything foreground. As some point datasets do (annotators also
click the background) we add ``background_points`` clicks on background pixels per image, drawn by
a seeded generator from the ground truth as an annotator would click them (Bearman et al., ECCV
2016, add an objectness prior instead; clicks are the simpler stand-in). SPML and the baselines
get the very same clicks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["BEARMAN_SECONDS", "IGNORE", "KINDS", "UNLABELLED", "annotation_cost", "box_labels", "full_labels",
           "point_labels", "scribble_labels", "superpixels"]

UNLABELLED = 254
"""Present but unlabelled (the learners cluster such pixels but take no label from them)."""
IGNORE = 255
"""Padding: no pixel (removed everywhere)."""
KINDS = ("tags", "points", "scribbles", "boxes", "full")
"""The kinds of label, from the cheapest to the most expensive."""


def _mask(item) -> np.ndarray:
    m = item["mask"]
    return (m.numpy() if hasattr(m, "numpy") else np.asarray(m)).astype(np.int64)


def full_labels(item) -> np.ndarray:
    """The dense mask itself (void 255 -> :data:`UNLABELLED`): the upper bound."""
    m = _mask(item)
    return np.where(m == 255, UNLABELLED, m)


def scribble_labels(item) -> np.ndarray:
    """The item's scribbles (class on strokes, 0 on background strokes, 255 elsewhere) in the convention."""
    s = item["scribbles"]
    s = (s.numpy() if hasattr(s, "numpy") else np.asarray(s)).astype(np.int64)
    return np.where(s == 255, UNLABELLED, s)


def point_labels(item, background_points: int = 1, radius: int = 1, seed: int = 0) -> np.ndarray:
    """One labelled disc of ``radius`` px per object point, and ``background_points`` background clicks
    (seeded by ``seed`` and the item's index; on background pixels at least ``radius + 2`` px from any
    object); everything else :data:`UNLABELLED`."""
    m = _mask(item)
    out = np.full(m.shape, UNLABELLED, np.int64)
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    pts = item["points"]
    pts = pts.numpy() if hasattr(pts, "numpy") else np.asarray(pts)
    for y, x, c in pts:
        out[(yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2] = c
    if background_points > 0:
        far = ndimage.distance_transform_edt(m == 0) > radius + 2
        cand = np.argwhere(far & (m == 0))
        rng = np.random.default_rng([int(seed), int(item.get("index", 0)), 31])
        for k in rng.choice(len(cand), size=min(background_points, len(cand)), replace=False) if len(cand) else []:
            y, x = cand[k]
            out[((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2) & (out == UNLABELLED)] = 0
    return out


def box_labels(item) -> np.ndarray:
    """The filled boxes (the box-supervised baseline): outside every box background, inside a box its
    class (where boxes overlap, the smaller box wins, as it is more likely in front)."""
    m = _mask(item)
    out = np.zeros(m.shape, np.int64)
    boxes = item["boxes"]
    boxes = boxes.numpy() if hasattr(boxes, "numpy") else np.asarray(boxes)
    order = sorted(range(len(boxes)), key=lambda k: -(boxes[k][2] - boxes[k][0] + 1) * (boxes[k][3] - boxes[k][1] + 1))
    for k in order:  # largest first, so smaller boxes are drawn over it
        x0, y0, x1, y1, c = boxes[k]
        out[y0:y1 + 1, x0:x1 + 1] = c
    return out


def superpixels(image: np.ndarray, n_segments: int = 40, compactness: float = 10.0, seed: int = 0) -> np.ndarray:
    """Low-level regions of an image (H, W, 3) in [0, 1]: SLIC superpixels (scikit-image), our offline
    stand-in for the paper's HED contours + OWT-UCM. Returns (H, W) int64 region ids from 0."""
    from skimage.segmentation import slic

    image = np.asarray(image, np.float64)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    seg = slic(image, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    return seg.astype(np.int64)


BEARMAN_SECONDS = {"class": 1.0, "points": 2.4, "scribbles": 10.9, "boxes": 26.0, "full": 79.0}
"""Annotation time per unit (seconds) in Bearman et al.'s cost model (ECCV 2016; the authors'
``plot_times.m``): 1 s to say whether a class is in the image, 2.4 s per click, 10.9 s per squiggle,
26 s per box, 79 s per object polygon (COCO's time, which they quote). Sources and caveats:
``benchmarks/published/label_costs.md``."""


def annotation_cost(item, kind: str, num_classes: int, background_points: int = 1) -> dict:
    """What one image's labels of ``kind`` cost, counted on the image and priced with Bearman et
    al.'s model (:data:`BEARMAN_SECONDS`).

    Every kind first answers, for each of the ``num_classes`` foreground classes, whether it is
    present (1 s each; for tags that is all); then it pays per unit: a click per object plus
    ``background_points`` background clicks (points), a stroke per connected stroke component of the
    scribble map, background strokes included (scribbles), a box per object (boxes), a polygon per
    object (full masks). Returns ``units`` (clicks, strokes, boxes or polygons; 0 for tags),
    ``labelled_share`` (fraction of pixels the label map labels, in [0, 1]) and ``seconds``.

    ``item``: a synthetic item (``mask``, ``tags``, ``points``, ``scribbles``, ``boxes``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown label kind {kind!r}: expected one of {KINDS}")
    tags = item["tags"]
    present = int(np.count_nonzero(tags.numpy() if hasattr(tags, "numpy") else np.asarray(tags)))
    objects = len(item["boxes"])
    if kind == "tags":
        return {"units": 0, "labelled_share": 0.0, "seconds": num_classes * BEARMAN_SECONDS["class"]}
    if kind == "points":
        lab = point_labels(item, background_points)
        units = objects + background_points
    elif kind == "scribbles":
        lab = scribble_labels(item)
        units = sum(int(ndimage.label(lab == c)[1]) for c in np.unique(lab) if c < UNLABELLED)
    elif kind == "boxes":
        lab, units = box_labels(item), objects
    else:
        lab, units = full_labels(item), objects
    labelled = float(np.mean(lab < UNLABELLED))
    seconds = (num_classes - present) * BEARMAN_SECONDS["class"] + units * BEARMAN_SECONDS[kind]
    return {"units": int(units), "labelled_share": labelled, "seconds": float(seconds)}
