"""Figures of the prototype chapters: maps side by side, the steps of a prototype CAM,
discrepancy regions, clusters and transport plans."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from .cams import finish_grid
from ..arrays import to_numpy
from .overlay import as_picture, clean_axes, cam_heatmap, colourise_mask, draw_outline



def _up(x, size) -> np.ndarray:
    """A (h, w) map resized (nearest) to ``size`` for drawing over the image."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(size), mode="nearest")[0, 0].numpy()


def compare_maps(samples: Sequence[dict], rows: Mapping[str, Sequence], titles: Sequence[str] | None = None,
                 hidden_maps: bool = True, size: float = 1.7):
    """One column per image, one row per method: the map of the image's first tagged class as
    a heat map, with the object outlined (white) and, on synthetic data, its emblem (black) and
    its class context (dashed).

    samples : data-set items; rows : method name -> per-sample (C, H, W) maps in [0, 1].
    """
    n = len(samples)
    fig, axes = plt.subplots(1 + len(rows), n, figsize=(size * n, size * (1 + len(rows)) + 0.3), squeeze=False)
    for j, s in enumerate(samples):
        axes[0, j].imshow(as_picture(s["image"]))
        tagged = np.nonzero(to_numpy(s["tags"]))[0]
        if len(tagged) == 0:  # nothing to show for an image without tags
            continue
        k = int(tagged[0])
        mask = to_numpy(s["mask"])
        draw_outline(axes[0, j], mask == k + 1)
        if titles:
            axes[0, j].set_title(titles[j], fontsize=8)
        for i, maps in enumerate(rows.values(), start=1):
            ax = axes[i, j]
            ax.imshow(cam_heatmap(s["image"], to_numpy(maps[j])[k].astype(np.float32)))
            draw_outline(ax, mask == k + 1)
            if hidden_maps and "emblem" in s:
                draw_outline(ax, to_numpy(s["emblem"]) == k + 1, colour="black")
                draw_outline(ax, (to_numpy(s["context"]) == k + 1) & (mask == 0), colour="white", linestyle="--")
    return finish_grid(fig, axes, rows)


def show_steps(sample: dict, panels: Mapping[str, object], size: float = 2.0):
    """One image through the steps of a prototype method, left to right.

    ``panels``: title -> a score map (h, w) in [0, 1] (heat map), a label map (h, w) of ints
    (key ending in ``"labels"``: colourised), or a dict ``{"fn": (h, w), "fp": (h, w)}`` of
    discrepancy regions (green: false negatives, red: false positives). Low-resolution maps are
    shown with nearest-neighbour upsampling, so every feature cell is visible.
    """
    image = as_picture(sample["image"])
    size_hw = image.shape[:2]
    mask = to_numpy(sample["mask"])
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(size * (1 + len(panels)), size + 0.4))
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    for ax, (title, p) in zip(axes[1:], panels.items()):
        if isinstance(p, Mapping):
            rgb = image * 0.45
            fn, fp = _up(to_numpy(p["fn"]), size_hw) > 0, _up(to_numpy(p["fp"]), size_hw) > 0
            rgb[fn] = [0.1, 0.85, 0.2]
            rgb[fp] = [0.95, 0.15, 0.1]
            ax.imshow(rgb)
        elif title.endswith("labels"):
            ax.imshow(colourise_mask(_up(to_numpy(p), size_hw).astype(np.int64)), interpolation="nearest")
        else:
            ax.imshow(cam_heatmap(sample["image"], np.clip(_up(to_numpy(p), size_hw), 0, 1)))
        ax.set_title(title, fontsize=9)
    for ax in axes:
        for cls in np.unique(mask[(mask > 0) & (mask < 255)]):
            draw_outline(ax, mask == cls, linewidth=0.9)
        clean_axes(ax)
    fig.tight_layout()
    return fig


def plot_assignment(points: np.ndarray, assignment: np.ndarray, prototypes: np.ndarray | None = None,
                    title: str = "", ax=None):
    """2-D points coloured by their (hard) prototype, prototypes as black stars.

    points (N, 2), assignment (N,) ints or (N, K) soft (argmax is drawn), prototypes (K, 2).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    a = np.asarray(assignment)
    hard = a.argmax(1) if a.ndim == 2 else a.astype(np.int64)
    none = hard < 0  # unassigned points are drawn grey
    ax.scatter(points[none, 0], points[none, 1], c="lightgrey", s=10)
    ax.scatter(points[~none, 0], points[~none, 1], c=hard[~none], cmap="tab10", vmin=0, vmax=9, s=10)
    if prototypes is not None:
        ax.scatter(prototypes[:, 0], prototypes[:, 1], marker="*", s=220, c="black", edgecolors="white")
    counts = np.bincount(hard[~none], minlength=a.shape[1] if a.ndim == 2 else max(hard.max() + 1, 1))
    ax.set_title(f"{title}\nsizes {[int(c) for c in counts]}", fontsize=9)
    ax.set_aspect("equal")
    clean_axes(ax)
    return ax


def plot_plan(plan: np.ndarray, order: np.ndarray | None = None, title: str = "transport plan", ax=None):
    """The transport plan (N, K) as a heat map, rows (cells) sorted by their prototype, with the
    column sums (the mass each prototype receives) written under it."""
    plan = np.asarray(plan, dtype=np.float64)
    if order is None:
        order = np.lexsort((-plan.max(1), plan.argmax(1)))
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 3.2))
    ax.imshow(plan[order] * len(plan), aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("prototype\n" + "  ".join(f"{m:.2f}" for m in plan.sum(0)), fontsize=8)
    ax.set_ylabel("cells (sorted)", fontsize=8)
    ax.set_xticks(range(plan.shape[1]))
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return ax


def show_clusters(sample: dict, clusters: np.ndarray, title: str = "", ax=None):
    """Cells of an image coloured by the prototype they match best (-1: not a seed cell)."""
    image = as_picture(sample["image"])
    c = _up(np.asarray(clusters, dtype=np.float32), image.shape[:2]).astype(np.int64)
    if ax is None:
        _, ax = plt.subplots(figsize=(2, 2))
    rgb = image * 0.35
    palette = plt.get_cmap("tab10")
    for k in np.unique(c[c >= 0]):
        rgb[c == k] = 0.35 * image[c == k] + 0.65 * np.array(palette(int(k))[:3])
    ax.imshow(rgb)
    ax.set_title(title, fontsize=9)
    clean_axes(ax)
    return ax


__all__ = ["compare_maps", "plot_assignment", "plot_plan", "show_clusters", "show_steps"]
