"""Sparse annotations derived from an instance map: tags, points, scribbles and boxes.

They imitate how people annotate: a click near the middle of each object, a stroke
inside each object and a few on the background, a tight box. All functions take an
instance map ``inst`` of shape ``(H, W)`` (0 = no object, ``k`` = object ``k``, 1-based)
and ``classes`` of shape ``(K,)`` (class label 1..N of object ``k+1``), so they work for
any data set that has instance masks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

UNLABELLED = 255


def tags_from_mask(mask: np.ndarray, n_classes: int) -> np.ndarray:
    """Multi-hot image tags ``(n_classes,)`` from a label map; 0 and 255 are not tags."""
    labels = np.unique(mask)
    labels = labels[(labels > 0) & (labels != 255)]
    if labels.size and labels.max() > n_classes:
        raise ValueError(f"mask holds label {int(labels.max())} but n_classes={n_classes}")
    tags = np.zeros(n_classes, np.float32)
    tags[labels.astype(np.int64) - 1] = 1.0
    return tags


def boxes_from_instances(inst: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Tight boxes ``(K, 5)`` int64, rows ``(x0, y0, x1, y1, class)``; corners inclusive."""
    boxes = np.zeros((len(classes), 5), np.int64)
    for k, c in enumerate(classes, start=1):
        ys, xs = np.nonzero(inst == k)
        if ys.size == 0:
            raise ValueError(f"object {k} has no visible pixel in the instance map")
        boxes[k - 1] = (xs.min(), ys.min(), xs.max(), ys.max(), c)
    return boxes


def points_from_instances(inst: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One click per object ``(K, 3)`` int64, rows ``(y, x, class)``.

    Annotators click well inside objects: the point is drawn uniformly among the object's
    pixels whose distance to the boundary is at least half the object's largest such distance.
    """
    pts = np.zeros((len(classes), 3), np.int64)
    for k, c in enumerate(classes, start=1):
        dist = ndimage.distance_transform_edt(np.pad(inst == k, 1))[1:-1, 1:-1]
        ys, xs = np.nonzero(dist >= 0.5 * dist.max())
        j = rng.integers(len(ys))
        pts[k - 1] = (ys[j], xs[j], c)
    return pts


def scribbles_from_instances(inst: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
                             width: int = 1, length: float = 0.8, n_background: int = 2) -> np.ndarray:
    """Scribble label map ``(H, W)`` uint8: object class on its strokes, 0 on background
    strokes, :data:`UNLABELLED` (255) elsewhere.

    Each stroke is a smooth random walk that stays at least ``width`` pixels inside its
    region (so a stroke never touches the boundary, as careful annotators draw), with
    ``length`` times the object's diameter. Background strokes keep the same margin from
    every object and are twice as long.
    """
    h, w = inst.shape
    out = np.full((h, w), UNLABELLED, np.uint8)
    margin = max(1, width)
    for k, c in enumerate(classes, start=1):
        region = inst == k
        dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        inside = dist > margin
        if not inside.any():  # tiny object: fall back to its most interior pixels
            inside = dist >= dist.max()
        diameter = 2.0 * np.sqrt(region.sum() / np.pi)
        _draw_walk(out, inside, int(c), length * diameter, width, rng)
    if n_background:
        bg = ndimage.distance_transform_edt(inst == 0) > margin + 1
        if bg.any():
            for _ in range(n_background):
                _draw_walk(out, bg, 0, 2 * length * 0.3 * max(h, w), width, rng)
    return out


def _draw_walk(out: np.ndarray, allowed: np.ndarray, value: int, length: float, width: int,
               rng: np.random.Generator) -> None:
    ys, xs = np.nonzero(allowed)
    j = rng.integers(len(ys))
    pos = np.array([ys[j], xs[j]], dtype=np.float64)
    heading = rng.uniform(0, 2 * np.pi)
    h, w = allowed.shape
    r = (width - 1) / 2.0
    travelled = 0.0
    _stamp(out, allowed, pos, r, value)
    while travelled < length:
        for attempt in range(12):
            turn = rng.normal(0, 0.25) if attempt == 0 else rng.uniform(-np.pi, np.pi)
            new_heading = heading + turn
            step = 0.7 * np.array([np.sin(new_heading), np.cos(new_heading)])
            nxt = pos + step
            iy, ix = int(round(nxt[0])), int(round(nxt[1]))
            if 0 <= iy < h and 0 <= ix < w and allowed[iy, ix]:
                break
        else:
            return  # boxed in: the stroke ends here
        pos, heading = nxt, new_heading
        travelled += 0.7
        _stamp(out, allowed, pos, r, value)


def _stamp(out: np.ndarray, allowed: np.ndarray, pos: np.ndarray, r: float, value: int) -> None:
    cy, cx = int(round(pos[0])), int(round(pos[1]))
    ri = int(np.ceil(r))
    y0, y1 = max(cy - ri, 0), min(cy + ri + 1, out.shape[0])
    x0, x1 = max(cx - ri, 0), min(cx + ri + 1, out.shape[1])
    yy, xx = np.mgrid[y0:y1, x0:x1]
    disk = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r + 0.5) & allowed[y0:y1, x0:x1]
    out[y0:y1, x0:x1][disk] = value
