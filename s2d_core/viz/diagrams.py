"""Diagrams drawn with matplotlib, so every chapter can show where it sits in the pipeline."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

STAGES = ("data", "classifier", "CAM", "densify", "enhance", "pseudo masks", "segmenter", "evaluation")
_NOTES = ("images +\nsparse labels", "tags only", "coarse maps", "C3 C4 C5:\nfuller maps", "C6: SAM asked\nby any map",
          "dense labels\n+ ignore", "trained on\npseudo masks", "mIoU")


def stage_map(highlight: str | None = None, ax=None):
    """The book's stage map; ``highlight`` (a name in :data:`STAGES`) is drawn in colour."""
    if highlight is not None and highlight not in STAGES:
        raise ValueError(f"unknown stage {highlight!r}: expected one of {STAGES}")
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 1.9))
    w, gap = 1.45, 0.35
    for i, (name, note) in enumerate(zip(STAGES, _NOTES)):
        x = i * (w + gap)
        on = name == highlight
        ax.add_patch(FancyBboxPatch((x, 0), w, 1, boxstyle="round,pad=0.05",
                                    facecolor="#f4a259" if on else "#dfe7f2", edgecolor="#33415c"))
        ax.text(x + w / 2, 0.68, name, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x + w / 2, 0.3, note, ha="center", va="center", fontsize=8, color="#33415c")
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.02, 0.5), (x - 0.02, 0.5), arrowstyle="-|>",
                                         mutation_scale=12, color="#33415c"))
    ax.set_xlim(-0.1, len(STAGES) * (w + gap) - gap + 0.1)
    ax.set_ylim(-0.15, 1.15)
    ax.axis("off")
    return ax
