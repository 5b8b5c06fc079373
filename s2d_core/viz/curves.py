"""Plots of evaluation curves."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_threshold_curve(thresholds: Sequence[float], miou: Sequence[float], reference: float | None = None,
                         reference_label: str = "fully supervised", label: str = "CAM seeds", ax=None):
    """Seed mIoU (in %) against the background threshold, its best point marked, and an
    optional horizontal reference line (e.g. the fully supervised mIoU, as a fraction)."""
    th, m = np.asarray(thresholds, float), 100 * np.asarray(miou, float)
    if th.shape != m.shape:
        raise ValueError(f"thresholds {th.shape} and miou {m.shape} must have the same shape")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(th, m, marker="o", ms=3, label=label)
    b = int(np.nanargmax(m))
    ax.scatter([th[b]], [m[b]], s=60, zorder=3, color="C3")
    ax.annotate(f"best {m[b]:.1f} at t = {th[b]:.2f}", (th[b], m[b]), textcoords="offset points",
                xytext=(8, -14), fontsize=9)
    if reference is not None:
        ax.axhline(100 * reference, color="k", ls="--", lw=1)
        ax.text(th[0], 100 * reference + 1, f"{reference_label}: {100 * reference:.1f}", fontsize=9)
    ax.set_xlabel("background threshold t")
    ax.set_ylabel("mIoU (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right", fontsize=9)
    return ax
