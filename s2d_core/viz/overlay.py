"""Overlay masks, tags, points, scribbles and boxes on images (matplotlib).

Images are ``(3, H, W)`` tensors or ``(H, W, 3)`` arrays in [0, 1]; label maps are ``(H, W)``
with 0 = background and 255 = void/unlabelled (drawn white / left transparent).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

from ..arrays import to_hwc, to_numpy
from ..data.voc import voc_colour_map


def as_picture(image) -> np.ndarray:
    """An image ready for ``imshow`` and for blending: (H, W, 3) float in [0, 1], from (3, H, W) or
    (H, W, 3), float (clipped) or uint8 (divided by 255)."""
    x = to_hwc(image)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else np.clip(x, 0, 1)


def clean_axes(ax) -> None:
    """No ticks: pictures of images and maps need none."""
    ax.set_xticks([])
    ax.set_yticks([])


def label_palette(n: int = 256) -> np.ndarray:
    """Label colours ``(n, 3)`` in [0, 1]: the PASCAL VOC colour map, except void (255), which
    is drawn white so that it reads as "no label" in figures."""
    pal = voc_colour_map(n) / 255.0
    if n > 255:
        pal[255] = 1.0
    return pal


_PALETTE = label_palette()


def colourise_mask(mask) -> np.ndarray:
    """RGB ``(H, W, 3)`` of a label map; void (255) is white."""
    m = to_numpy(mask).astype(np.int64)
    return _PALETTE[np.clip(m, 0, 255)]


def overlay_mask(image, mask, alpha: float = 0.55, background: bool = False) -> np.ndarray:
    """Blend label colours over an image; background (and void) stay as in the image unless
    ``background`` is True."""
    img = as_picture(image)
    m = to_numpy(mask)
    col = colourise_mask(m)
    sel = (m != 255) if background else ((m > 0) & (m != 255))
    out = img.copy()
    out[sel] = (1 - alpha) * img[sel] + alpha * col[sel]
    return out


def cam_heatmap(image, cam, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a score map ``(H, W)`` in [0, 1] over an image as a heat map -> ``(H, W, 3)``."""
    img = as_picture(image)
    c = to_numpy(cam).astype(np.float64)
    if c.shape != img.shape[:2]:
        raise ValueError(f"cam has shape {c.shape} but the image is {img.shape[:2]}")
    heat = plt.get_cmap(cmap)(np.clip(c, 0, 1))[..., :3]
    return (1 - alpha) * img + alpha * heat


def draw_outline(ax, region, colour="white", linewidth: float = 1.2, linestyle: str = "-") -> None:
    """Outline of a boolean region ``(H, W)`` on ``ax`` (nothing if the region is empty)."""
    r = to_numpy(region).astype(float)
    if r.any():
        ax.contour(r, levels=[0.5], colors=[colour], linewidths=linewidth, linestyles=linestyle)


def draw_points(ax, points, size: float = 60) -> None:
    """Clicks ``(K, 3)`` rows ``(y, x, class)`` as dots in their class colour with a white rim."""
    for y, x, c in to_numpy(points).reshape(-1, 3):
        ax.scatter([x], [y], s=size, c=[_PALETTE[int(c)]], edgecolors="white", linewidths=1.5, zorder=3)


def draw_boxes(ax, boxes, linewidth: float = 2) -> None:
    """Boxes ``(K, 5)`` rows ``(x0, y0, x1, y1, class)``, inclusive pixel corners."""
    for x0, y0, x1, y1, c in to_numpy(boxes).reshape(-1, 5):
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                               edgecolor=_PALETTE[int(c)], linewidth=linewidth))


def draw_scribbles(ax, image, scribbles) -> None:
    """Scribble map ``(H, W)`` (class on strokes, 0 background strokes, 255 unlabelled) over a
    dimmed image; background strokes are drawn in black-outlined grey."""
    img = as_picture(image) * 0.6
    s = to_numpy(scribbles)
    col = colourise_mask(s)
    col[s == 0] = (0.85, 0.85, 0.85)
    img[s != 255] = col[s != 255]
    ax.imshow(img, interpolation="nearest")


def legend_handles(class_names: Sequence[str], labels: Sequence[int] | None = None) -> list[Patch]:
    """Legend patches for class labels (all of them by default)."""
    labels = range(len(class_names)) if labels is None else labels
    return [Patch(color=_PALETTE[int(c)], label=class_names[int(c)]) for c in labels]


def show_sample(ax, sample: dict, kind: str, class_names: Sequence[str] | None = None) -> None:
    """Draw one view of a sample on ``ax``.

    ``kind`` is one of ``image``, ``mask``, ``tags``, ``points``, ``scribbles``, ``boxes``,
    ``emblem``, ``context``. ``sample`` is an item of a data set (tensors or arrays).
    """
    image = sample["image"]
    titles = {"image": "image", "mask": "dense mask", "tags": "image tags", "points": "points",
              "scribbles": "scribbles", "boxes": "boxes", "emblem": "emblems (diagnostic)",
              "context": "class context (diagnostic)"}
    if kind not in titles:
        raise ValueError(f"unknown kind {kind!r}: expected one of {list(titles)}")
    if kind == "scribbles":
        draw_scribbles(ax, image, sample["scribbles"])
    elif kind in ("mask", "emblem", "context"):
        ax.imshow(overlay_mask(image, sample[kind], alpha=0.85 if kind == "mask" else 0.7), interpolation="nearest")
    else:
        ax.imshow(as_picture(image), interpolation="nearest")
    if kind == "points":
        draw_points(ax, sample["points"])
    elif kind == "boxes":
        draw_boxes(ax, sample["boxes"])
    elif kind == "tags":
        tags = np.nonzero(to_numpy(sample["tags"]))[0] + 1
        text = ", ".join(class_names[c] if class_names else str(c) for c in tags)
        ax.text(0.5, -0.02, text, transform=ax.transAxes, ha="center", va="top", fontsize=9,
                bbox=dict(facecolor="white", alpha=0.9, edgecolor="none"))
    ax.set_title(titles[kind], fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def annotation_panel(sample: dict, class_names: Sequence[str] | None = None,
                     kinds: Sequence[str] = ("image", "tags", "points", "scribbles", "boxes", "mask"),
                     size: float = 2.4):
    """One row of panels, one per annotation type, from the sparsest to the densest."""
    fig, axes = plt.subplots(1, len(kinds), figsize=(size * len(kinds), size * 1.15))
    for ax, kind in zip(np.atleast_1d(axes), kinds):
        show_sample(ax, sample, kind, class_names)
    if class_names is not None:
        present = sorted(set(np.unique(to_numpy(sample["mask"]))) - {255})
        fig.legend(handles=legend_handles(class_names, present), loc="lower center",
                   ncol=len(present), frameon=False, fontsize=9, bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return fig
