"""Figures of the C6 chapter: the graph over a CAM, its eigenvectors, clusters, prompt points
and the masks a promptable segmenter returns for them."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from ..pseudo.prompts import Prompts
from .overlay import as_picture, clean_axes, cam_heatmap, draw_outline



def _cells_to_xy(nodes: np.ndarray, grid: int, height: int, width: int) -> np.ndarray:
    return np.stack([(nodes[:, 1] + 0.5) * width / grid - 0.5, (nodes[:, 0] + 0.5) * height / grid - 0.5], 1)


def draw_prompts(ax, prompts: Prompts, size: float = 70) -> None:
    """Positive points (green stars), negative points (red crosses) and the box (yellow)."""
    pos, neg = prompts.positives, prompts.negatives
    if len(pos):
        ax.scatter(pos[:, 0], pos[:, 1], marker="*", s=size, c="lime", edgecolors="black", linewidths=0.8, zorder=5)
    if len(neg):
        ax.scatter(neg[:, 0], neg[:, 1], marker="X", s=size * 0.7, c="red", edgecolors="white", linewidths=0.6, zorder=5)
    if prompts.box is not None:
        x0, y0, x1, y1 = prompts.box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec="yellow", lw=2))


def show_graph(ax, image, W, nodes: np.ndarray, grid: int, max_edges: int = 4000) -> None:
    """The kNN graph over the image: nodes at cell centres, edges darker when stronger."""
    img = as_picture(image)
    h, w = img.shape[:2]
    ax.imshow(img)
    xy = _cells_to_xy(nodes, grid, h, w)
    coo = W.tocoo()
    keep = coo.row < coo.col
    i, j, v = coo.row[keep], coo.col[keep], coo.data[keep]
    if len(v) > max_edges:
        top = np.argsort(-v)[:max_edges]
        i, j, v = i[top], j[top], v[top]
    segs = np.stack([xy[i], xy[j]], 1)
    colours = np.zeros((len(v), 4))
    colours[:, :3] = 1.0
    colours[:, 3] = np.clip(v / max(v.max(), 1e-12), 0.05, 1.0) if len(v) else 0
    ax.add_collection(LineCollection(segs, colors=colours, linewidths=0.6))
    ax.scatter(xy[:, 0], xy[:, 1], s=2, c="white")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    clean_axes(ax)


def show_eigenvectors(image, vectors: np.ndarray, nodes: np.ndarray, grid: int, eigenvalues: np.ndarray,
                      count: int = 3, size: float = 2.0):
    """The first ``count`` eigenvectors of the normalised Laplacian, one panel each, painted on
    their grid cells over the image (blue negative, red positive)."""
    img = as_picture(image)
    h, w = img.shape[:2]
    count = min(count, vectors.shape[1])
    fig, axes = plt.subplots(1, count, figsize=(size * count, size + 0.3), squeeze=False)
    for k in range(count):
        ax = axes[0, k]
        field = np.full((grid, grid), np.nan)
        v = vectors[:, k]
        field[nodes[:, 0], nodes[:, 1]] = v / max(np.abs(v).max(), 1e-12)
        ax.imshow(img)
        ax.imshow(field, cmap="coolwarm", vmin=-1, vmax=1, alpha=0.75, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                  interpolation="nearest")
        ax.set_title(f"eigenvector {k + 1}\n$\\lambda_{k + 1}$ = {eigenvalues[k]:.4f}", fontsize=8)
        clean_axes(ax)
    fig.tight_layout()
    return fig


def plot_spectrum(eigenvalues: np.ndarray, k: int, ax=None, ratio: float | None = None):
    """The smallest eigenvalues with the chosen ``k`` marked (the gap after it)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.4))
    lam = np.asarray(eigenvalues)
    idx = np.arange(1, len(lam) + 1)
    ax.plot(idx, lam, "o-", color="tab:blue")
    ax.axvspan(0.5, k + 0.5, color="tab:green", alpha=0.15, label=f"k = {k} cluster{'s' if k > 1 else ''}")
    ax.set_xlabel("i")
    ax.set_ylabel(r"$\lambda_i$ of $L_{sym}$")
    ax.set_xticks(idx)
    ax.legend(fontsize=8, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    if ratio is not None:
        ax.set_title(f"gap rule: $\\lambda_k \\leq {ratio}\\,\\lambda_{{k+1}}$", fontsize=9)
    return ax


def show_clusters(ax, image, clusters: np.ndarray, prompts: Prompts | None = None) -> None:
    """Cluster of each grid cell in its own colour over the image, with the chosen points."""
    img = as_picture(image)
    h, w = img.shape[:2]
    ax.imshow(img)
    c = np.ma.masked_less(clusters.astype(float), 0)
    ax.imshow(c, cmap="tab20", vmin=0, vmax=19, alpha=0.6, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")
    if prompts is not None:
        draw_prompts(ax, prompts)
    clean_axes(ax)


def compare_prompts(image, cam: np.ndarray, truth: np.ndarray, results: Mapping[str, tuple[Prompts, np.ndarray]],
                    size: float = 1.9):
    """One column per strategy: the prompts over the CAM (top) and the chosen mask (bottom),
    the true object outlined in white.

    results : strategy -> (prompts, mask ``(H, W)`` bool).
    """
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(size * n, 2 * size + 0.4), squeeze=False)
    for j, (name, (pr, mask)) in enumerate(results.items()):
        axes[0, j].imshow(cam_heatmap(image, cam))
        draw_prompts(axes[0, j], pr)
        draw_outline(axes[0, j], truth)
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].imshow(as_picture(image))
        if mask.any():
            axes[1, j].imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.55)
        draw_outline(axes[1, j], truth)
        iou = (mask & truth).sum() / max((mask | truth).sum(), 1)
        axes[1, j].set_xlabel(f"IoU {iou:.2f}", fontsize=8)
        for ax in axes[:, j]:
            clean_axes(ax)
    axes[0, 0].set_ylabel("prompts on the CAM", fontsize=8)
    axes[1, 0].set_ylabel("mask chosen", fontsize=8)
    fig.tight_layout()
    return fig


def show_candidates(image, masks: np.ndarray, scores: Sequence[float], prompts: Prompts, truth: np.ndarray | None = None,
                    titles: Sequence[str] | None = None, size: float = 1.9):
    """The candidate masks a segmenter returns for one question, with their scores."""
    n = len(masks)
    fig, axes = plt.subplots(1, n + 1, figsize=(size * (n + 1), size + 0.4), squeeze=False)
    axes[0, 0].imshow(as_picture(image))
    draw_prompts(axes[0, 0], prompts)
    axes[0, 0].set_title("prompt", fontsize=9)
    for j, (m, s) in enumerate(zip(masks, scores), start=1):
        axes[0, j].imshow(as_picture(image))
        axes[0, j].imshow(np.ma.masked_where(~m, m), cmap="autumn", alpha=0.55)
        if truth is not None:
            draw_outline(axes[0, j], truth)
        axes[0, j].set_title(titles[j - 1] if titles else f"candidate {j}: score {s:.2f}", fontsize=8)
    for ax in axes.ravel():
        clean_axes(ax)
    fig.tight_layout()
    return fig
