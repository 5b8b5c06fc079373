"""Figures for class activation maps: CAM grids, the CAM as a weighted sum, label-map rows."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..arrays import to_numpy
from .overlay import as_picture, clean_axes, cam_heatmap, colourise_mask, draw_outline



def show_cams(samples: Sequence[dict], cams: Sequence, class_names: Sequence[str], titles: Sequence[str] | None = None,
              hidden_maps: bool = True, size: float = 1.9):
    """Two rows per image column: the image with its object outlined, and the CAM of its first
    tagged class. With ``hidden_maps`` (synthetic data) the CAM row also outlines the object
    (white), its emblem (black) and its class context on the background (white, dashed).

    samples : data-set items (``image``, ``mask``, ``tags``, and ``emblem``/``context``).
    cams : (C, H, W) per sample, in [0, 1].
    """
    n = len(samples)
    fig, axes = plt.subplots(2, n, figsize=(size * n, 2 * size + 0.5), squeeze=False)
    for j, (s, cam) in enumerate(zip(samples, cams)):
        k = int(np.nonzero(to_numpy(s["tags"]))[0][0])
        cls = k + 1
        mask = to_numpy(s["mask"])
        axes[0, j].imshow(as_picture(s["image"]))
        draw_outline(axes[0, j], mask == cls)
        axes[0, j].set_title(titles[j] if titles else class_names[cls], fontsize=8)
        axes[1, j].imshow(cam_heatmap(s["image"], to_numpy(cam)[k].astype(np.float32)))
        draw_outline(axes[1, j], mask == cls)
        if hidden_maps and "emblem" in s:
            draw_outline(axes[1, j], to_numpy(s["emblem"]) == cls, colour="black")
            draw_outline(axes[1, j], (to_numpy(s["context"]) == cls) & (mask == 0), colour="white", linestyle="--")
    for ax in axes.flat:
        clean_axes(ax)
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("CAM", fontsize=9)
    fig.tight_layout()
    return fig


def show_label_maps(images: Sequence, rows: Mapping[str, Sequence], size: float = 1.6):
    """A grid: the images on top, then one row of colourised label maps per entry of ``rows``
    (name -> (H, W) maps, 255 drawn white), e.g. ground truth, seeds, CRF, network output."""
    n = len(images)
    fig, axes = plt.subplots(1 + len(rows), n, figsize=(size * n, size * (1 + len(rows)) + 0.2), squeeze=False)
    for j, img in enumerate(images):
        axes[0, j].imshow(as_picture(img))
        for i, maps in enumerate(rows.values(), start=1):
            axes[i, j].imshow(colourise_mask(to_numpy(maps[j]).astype(np.int64)), interpolation="nearest")
    return finish_grid(fig, axes, rows)


def finish_grid(fig, axes, row_names):
    """Clear the ticks of an image grid, name its rows ("image", then ``row_names``), tighten."""
    for ax in axes.flat:
        clean_axes(ax)
    axes[0, 0].set_ylabel("image", fontsize=9)
    for i, name in enumerate(row_names, start=1):
        axes[i, 0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def cam_decomposition(model, sample: dict, class_names: Sequence[str], k: int = 3, size: float = 1.9):
    """The CAM as a weighted sum of feature channels (Zhou et al. 2016, eq. CAM_c = sum_d W_cd F_d):
    the image, the ``k`` channels with the largest contribution ``W_cd * mean(F_d)`` for the
    image's first tagged class, and the resulting ReLU(W_c^T F), all at feature resolution."""
    model.eval()
    device = next(model.parameters()).device
    x = sample["image"][None].to(device)
    f = model.features(x)[0].cpu()  # (D, h, w)
    cls = int(np.nonzero(to_numpy(sample["tags"]))[0][0])
    w = model.head.weight[cls].flatten().cpu()  # (D,)
    contrib = w * f.mean((1, 2))
    top = torch.argsort(contrib, descending=True)[:k]
    fig, axes = plt.subplots(1, k + 2, figsize=(size * (k + 2), size + 0.5))
    axes[0].imshow(as_picture(sample["image"]))
    axes[0].set_title(f"image ({class_names[cls + 1]})", fontsize=8)
    for a, d in zip(axes[1:], top.tolist()):
        a.imshow(f[d].numpy(), cmap="viridis")
        a.set_title(f"channel {d}\nW = {w[d]:+.2f}", fontsize=8)
    cam = torch.relu(torch.einsum("dhw,d->hw", f, w))
    axes[-1].imshow(cam.numpy(), cmap="jet")
    axes[-1].set_title("ReLU(W$_c^T$F)\n(all channels)", fontsize=8)
    for a in axes:
        clean_axes(a)
    fig.tight_layout()
    return fig


def plot_cam_mass(shares: Mapping[str, Mapping[str, float]], ax=None):
    """Stacked horizontal bars: for each named CAM variant, its mass on emblem / rest of the
    object / class context / other (fractions from :func:`s2d_core.eval.cam_diagnostics.cam_mass`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(shares)))
    colours = {"emblem": "#222222", "object_rest": "#4c9be8", "class_context": "#e8a04c", "other": "#bbbbbb"}
    labels = {"emblem": "emblem", "object_rest": "rest of object", "class_context": "class context", "other": "other"}
    for i, (name, share) in enumerate(shares.items()):
        left = 0.0
        for region, v in share.items():
            ax.barh(i, 100 * v, left=left, color=colours[region], label=labels[region] if i == 0 else None)
            if v > 0.06:
                ax.text(left + 50 * v, i, f"{100 * v:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if region in ("emblem", "object_rest") else "black")
            left += 100 * v
    ax.set_yticks(range(len(shares)), list(shares))
    ax.set_xlabel("share of CAM mass (%)")
    ax.set_xlim(0, 100)
    ax.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_cam_region_means(means: Mapping[str, Mapping[str, float]], ax=None, ylabel: str = "mean CAM value"):
    """Grouped bars: mean CAM value on each region (from
    :func:`s2d_core.eval.cam_diagnostics.cam_region_means`), one colour per CAM variant."""
    labels = {"emblem": "emblem", "object_rest": "rest of\nobject", "class_context": "class\ncontext",
              "other_background": "other\nbackground", "other_objects": "other\nobjects"}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    regions = list(next(iter(means.values())))
    x = np.arange(len(regions))
    width = 0.8 / len(means)
    for i, (name, m) in enumerate(means.items()):
        bars = ax.bar(x + (i - (len(means) - 1) / 2) * width, [m[r] for r in regions], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, [labels.get(r, r) for r in regions], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
