"""Figures of clips: frames with their masks, scribbles and flow; an animation of a clip."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.video import BACKGROUND, FOREGROUND, flow_to_rgb

__all__ = ["clip_animation", "scribble_overlay", "show_clip"]


def scribble_overlay(frame: np.ndarray, scribbles: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``frame`` (H, W, 3) in [0, 1] with the salient mask's outline (white), foreground strokes
    (red) and background strokes (blue): (H, W, 3)."""
    out = np.array(frame, np.float32, copy=True)
    if mask is not None:
        m = np.asarray(mask) > 0
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        out[edge] = 1.0
    out[np.asarray(scribbles) == FOREGROUND] = (1.0, 0.1, 0.1)
    out[np.asarray(scribbles) == BACKGROUND] = (0.1, 0.3, 1.0)
    return out


def _frames(clip: dict) -> np.ndarray:
    f = clip["frames"]
    f = f.numpy() if hasattr(f, "numpy") else np.asarray(f)
    return f.transpose(0, 2, 3, 1) if f.shape[1] == 3 else f.astype(np.float32) / (255.0 if f.dtype == np.uint8 else 1.0)


def show_clip(clip: dict, frames: Sequence[int] | None = None, rows: Sequence[str] = ("frame", "scribbles", "flow"),
              predictions: dict[str, np.ndarray] | None = None, title: str | None = None):
    """A grid: one column per frame of ``clip`` (an item of :class:`~s2d_core.data.video.SyntheticVideo`
    or of a real loader), rows among ``frame``, ``mask``, ``scribbles`` (strokes and the mask's
    outline), ``flow`` (the estimated flow, colour-coded) and ``true flow``; then one row per entry
    of ``predictions`` (name -> (T, H, W) saliency in [0, 1])."""
    import matplotlib.pyplot as plt

    imgs = _frames(clip)
    T = len(imgs)
    frames = list(range(T)) if frames is None else list(frames)
    masks = np.asarray(clip["masks"])
    scr = np.asarray(clip["scribbles"])
    rows = list(rows) + list((predictions or {}).keys())
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(1.5 * len(frames) + 0.8, 1.5 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, t in enumerate(frames):
            ax = axes[r, c]
            if row == "frame":
                ax.imshow(imgs[t])
            elif row == "mask":
                ax.imshow(masks[t], cmap="gray", vmin=0, vmax=1)
            elif row == "scribbles":
                ax.imshow(scribble_overlay(imgs[t], scr[t], masks[t]))
            elif row in ("flow", "true flow"):
                f = np.asarray(clip["flow" if row == "flow" else "true_flow"])[t]
                ax.imshow(flow_to_rgb(f, max_magnitude=4.0))
            else:
                ax.imshow(np.asarray(predictions[row])[t], cmap="magma", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {t}", fontsize=8)
            if c == 0:
                ax.set_ylabel(row, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def clip_animation(clip: dict, interval: int = 250):
    """A matplotlib animation of a clip: the frame with its scribbles and mask outline beside the
    colour-coded estimated flow (``.to_jshtml()`` shows it in a notebook)."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    imgs, masks, scr = _frames(clip), np.asarray(clip["masks"]), np.asarray(clip["scribbles"])
    flows = np.asarray(clip["flow"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(4.4, 2.3))
    ia = a.imshow(scribble_overlay(imgs[0], scr[0], masks[0]))
    ib = b.imshow(flow_to_rgb(flows[0], max_magnitude=4.0))
    for ax, t in ((a, "frame, scribbles, mask outline"), (b, "estimated flow")):
        ax.set_title(t, fontsize=8)
        ax.axis("off")
    fig.tight_layout()

    def step(t):
        ia.set_data(scribble_overlay(imgs[t], scr[t], masks[t]))
        ib.set_data(flow_to_rgb(flows[t], max_magnitude=4.0))
        return ia, ib

    anim = animation.FuncAnimation(fig, step, frames=len(imgs), interval=interval, blit=True)
    plt.close(fig)
    return anim
