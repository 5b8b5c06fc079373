"""Figures about the synthetic world: knob sweeps and sub-type galleries."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..data.config import SyntheticConfig
from ..data.synthetic import make_world, render_scene
from .overlay import overlay_mask


def knob_strip(cfg: SyntheticConfig, knob: str, values: Sequence, index: int = 0,
               views: Sequence[str] = ("image",), size: float = 2.2):
    """Render the same scene (``index`` of ``train``) with one knob set to each of ``values``.

    Knobs that do not change the random draws (sizes, probabilities, colours) keep the layout
    fixed, so the columns differ only by the knob. ``views``: rows to draw, among ``image``,
    ``mask``, ``emblem``, ``context``.
    """
    fig, axes = plt.subplots(len(views), len(values), figsize=(size * len(values), size * len(views) + 0.3),
                             squeeze=False)
    for j, v in enumerate(values):
        s = render_scene(cfg.replace(**{knob: v}), "train", index)
        for i, view in enumerate(views):
            ax = axes[i, j]
            ax.imshow(s["image"] if view == "image" else overlay_mask(s["image"], s[view], 0.75),
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{knob} = {v}", fontsize=9)
            if j == 0:
                ax.set_ylabel(view, fontsize=9)
    fig.tight_layout()
    return fig


def object_crop(image: np.ndarray, box: np.ndarray, out: int = 32, margin: float = 0.25) -> np.ndarray:
    """Square crop ``(out, out, 3)`` around a box ``(x0, y0, x1, y1, ...)`` (nearest-neighbour)."""
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    h, w = image.shape[:2]
    half = (1 + 2 * margin) * max(x1 - x0 + 1, y1 - y0 + 1) / 2
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    ys = np.clip(np.round(np.linspace(cy - half, cy + half, out)).astype(int), 0, h - 1)
    xs = np.clip(np.round(np.linspace(cx - half, cx + half, out)).astype(int), 0, w - 1)
    return image[ys][:, xs]


def subtype_gallery(data: dict, cfg: SyntheticConfig, per_subtype: int = 3, size: float = 1.0):
    """Grid of object crops: one row per class, ``per_subtype`` columns for each sub-type."""
    world = make_world(cfg)
    n, s = cfg.n_classes, cfg.n_subtypes
    found: dict[tuple[int, int], list] = {}
    for i, (cls, sub, boxes) in enumerate(zip(data["classes"], data["subtypes"], data["boxes"])):
        for c, t, b in zip(cls, sub, boxes):
            lst = found.setdefault((int(c), int(t)), [])
            if len(lst) < per_subtype:
                lst.append(object_crop(data["image"][i], b))
    cols = s * per_subtype
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + 0.4), squeeze=False)
    for c in range(1, n + 1):
        for t in range(s):
            for k in range(per_subtype):
                ax = axes[c - 1, t * per_subtype + k]
                crops = found.get((c, t), [])
                if k < len(crops):
                    ax.imshow(crops[k], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 1 and k == 0:
                    ax.set_title(f"sub-type {t}", fontsize=9, loc="left")
        axes[c - 1, 0].set_ylabel(world.classes[c - 1].name, fontsize=9)
    fig.tight_layout()
    return fig
