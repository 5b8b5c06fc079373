"""Figures about where features come from: the pretraining world, and what a backbone's features see."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from ..data.config import PretrainWorldConfig
from ..data.pretraining import SHAPE_CLASSES, render_pretraining_scene, shape_mask
from .overlay import as_picture, clean_axes

__all__ = ["cosine_to_cell", "feature_rgb", "pretraining_scenes", "shape_gallery", "show_feature_maps"]


def shape_gallery(classes: Sequence[int] | None = None, cols: int = 17, size: float = 0.72):
    """Every class outline of the pretraining world (or ``classes``), titled by name."""
    classes = list(range(len(SHAPE_CLASSES))) if classes is None else list(classes)
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows * 1.15), squeeze=False)
    for ax in axes.flat:
        clean_axes(ax)
        ax.axis("off")
    for ax, c in zip(axes.flat, classes):
        ax.imshow(shape_mask(c, 40), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(SHAPE_CLASSES[c].name, fontsize=4.5)
    fig.tight_layout(pad=0.2)
    return fig


def pretraining_scenes(cfg: PretrainWorldConfig, n: int = 12, cols: int = 6, size: float = 1.9, split: str = "train"):
    """The first ``n`` scenes of a split with their tags as titles (the only supervision)."""
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        clean_axes(ax)
        if i >= n:
            ax.axis("off")
            continue
        s = render_pretraining_scene(cfg, split, i)
        ax.imshow(s["image"], interpolation="nearest")
        ax.set_title("\n".join(sorted({SHAPE_CLASSES[c].name for c in s["classes"]})), fontsize=6)
    fig.tight_layout()
    return fig


def feature_rgb(fmap: torch.Tensor) -> np.ndarray:
    """A feature map (D, h, w) as a picture (h, w, 3): its first three principal components,
    each scaled to [0, 1]. Cells with similar features get similar colours."""
    f = torch.as_tensor(fmap).float().flatten(1).T  # (N, D)
    f = f - f.mean(0)
    _, _, v = torch.linalg.svd(f, full_matrices=False)
    p = (f @ v[:3].T).numpy()
    p = (p - p.min(0)) / np.maximum(np.ptp(p, 0), 1e-8)
    return p.reshape(fmap.shape[-2], fmap.shape[-1], 3)


def cosine_to_cell(fmap: torch.Tensor, cell: tuple[int, int]) -> np.ndarray:
    """Cosine similarity (h, w) in [-1, 1] of every cell's feature to the feature of ``cell`` (row, col)."""
    f = F.normalize(torch.as_tensor(fmap).float().flatten(1), dim=0)  # (D, N)
    h, w = fmap.shape[-2:]
    ref = f[:, cell[0] * w + cell[1]]
    return (ref @ f).reshape(h, w).numpy()


def show_feature_maps(item: dict, maps: Mapping[str, torch.Tensor], cell: tuple[int, int], size: float = 2.0):
    """One image and, per network, its features as colours (:func:`feature_rgb`) and their cosine
    to one body ``cell`` (marked): does the network see the object as one thing, apart from the ground?"""
    names = list(maps)
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(size * (len(names) + 1), 2 * size + 0.5), squeeze=False)
    img = as_picture(item["image"])
    for r in range(2):
        axes[r, 0].imshow(img)
        clean_axes(axes[r, 0])
    h, w = next(iter(maps.values())).shape[-2:]
    sy, sx = img.shape[0] / h, img.shape[1] / w
    axes[0, 0].set_title("image", fontsize=8)
    axes[1, 0].plot([(cell[1] + 0.5) * sx - 0.5], [(cell[0] + 0.5) * sy - 0.5], "w*", ms=12, mec="k")
    axes[1, 0].set_title("the chosen body cell", fontsize=8)
    for j, name in enumerate(names, start=1):
        axes[0, j].imshow(feature_rgb(maps[name]), interpolation="nearest")
        axes[0, j].set_title(name, fontsize=8)
        im = axes[1, j].imshow(cosine_to_cell(maps[name], cell), cmap="viridis", vmin=-0.2, vmax=1, interpolation="nearest")
        axes[1, j].plot([cell[1]], [cell[0]], "w*", ms=10, mec="k")
        for r in range(2):
            clean_axes(axes[r, j])
    axes[0, 1].set_ylabel("3 principal\ncomponents", fontsize=8)
    axes[1, 1].set_ylabel("cosine to\nthe body cell", fontsize=8)
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="cosine")
    return fig
