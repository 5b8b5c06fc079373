"""Statistics of a generated split: what the book's "synthetic world" chapter reports."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..tables import to_markdown


def class_statistics(data: dict, class_names: Sequence[str]) -> list[dict]:
    """Per-class statistics of a split produced by :func:`~s2d_core.data.dataset.generate_split`.

    Returns one dict per foreground class with: ``images`` (number containing it),
    ``objects``, ``object_area`` (mean visible object area, % of the image), ``pixel_share``
    (% of all foreground pixels), ``emblem_share`` (% of the class's pixels that are emblem),
    ``on_context`` (% of images with the class whose class context is painted too) and
    ``context_without_class`` (% of images *without* the class that show its context).
    """
    mask, emblem, context = data["mask"], data["emblem"], data["context"]
    n, hw = mask.shape[0], mask.shape[1] * mask.shape[2]
    fg_total = max(int(((mask > 0) & (mask != 255)).sum()), 1)
    has_ctx = np.stack([(context == c).reshape(n, -1).any(1) for c in range(1, len(class_names))], 1)
    rows = []
    for c in range(1, len(class_names)):
        present = np.array([c in cl for cl in data["classes"]])
        areas = [(data["instances"][i] == k + 1).sum() for i, cl in enumerate(data["classes"])
                 for k, cc in enumerate(cl) if cc == c]
        pix = int((mask == c).sum())
        rows.append({
            "class": class_names[c],
            "images": int(present.sum()),
            "objects": len(areas),
            "object_area": 100.0 * float(np.mean(areas)) / hw if areas else float("nan"),
            "pixel_share": 100.0 * pix / fg_total,
            "emblem_share": 100.0 * int((emblem == c).sum()) / max(pix, 1),
            "on_context": 100.0 * float(has_ctx[present, c - 1].mean()) if present.any() else float("nan"),
            "context_without_class": 100.0 * float(has_ctx[~present, c - 1].mean()) if (~present).any() else float("nan"),
        })
    return rows


def cooccurrence(data: dict, n_classes: int) -> np.ndarray:
    """``(N, N)`` counts of images containing both class ``i+1`` and class ``j+1``
    (the diagonal counts images containing the class)."""
    tags = np.asarray(data["tags"]) > 0
    if tags.shape[1] != n_classes:
        raise ValueError(f"tags have {tags.shape[1]} classes, expected n_classes={n_classes}")
    t = tags.astype(np.int64)
    return t.T @ t


def annotation_density(data: dict) -> dict[str, float]:
    """How much of the image each annotation type labels, in % of pixels (mean over images)."""
    mask, scr = data["mask"], data["scribbles"]
    hw = mask.shape[1] * mask.shape[2]
    box_px, box_bg = [], []
    for m, boxes in zip(mask, data["boxes"]):
        cover = np.zeros(m.shape, bool)
        for x0, y0, x1, y1, _ in boxes:
            cover[y0:y1 + 1, x0:x1 + 1] = True
        box_px.append(cover.mean())
        box_bg.append(((m == 0) & cover).sum() / max(cover.sum(), 1))
    return {
        "foreground (dense mask)": 100.0 * float(((mask > 0) & (mask != 255)).mean()),
        "points": 100.0 * float(np.mean([len(p) for p in data["points"]])) / hw,
        "scribbles, object strokes": 100.0 * float(((scr > 0) & (scr != 255)).mean()),
        "scribbles, background strokes": 100.0 * float((scr == 0).mean()),
        "inside boxes": 100.0 * float(np.mean(box_px)),
        "background inside boxes (% of box area)": 100.0 * float(np.mean(box_bg)),
    }


def markdown_table(rows: list[dict], floatfmt: str = ".1f") -> str:
    """A Markdown table from a list of dicts with the same keys (floats formatted with ``floatfmt``)."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    # cells become text before pandas sees them: a column of ints and floats would turn into floats
    text = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    cells = pd.DataFrame(rows, columns=list(rows[0]), dtype=object).map(text)
    return to_markdown(cells)


def video_statistics(data: dict) -> dict:
    """Statistics of a split of the video world (:func:`~s2d_core.data.video.generate_clips`).

    Returns (percentages of clips, frames or pixels as named): ``clips``, ``frames_per_clip``,
    ``camouflaged`` / ``with_occluder`` / ``entering_or_leaving`` (% of clips), ``distractors``
    (mean per clip), ``object_area`` (mean visible salient area, % of a frame, over frames where
    it is visible), ``object_absent`` (% of frames without a visible salient pixel),
    ``scribbled_fg`` / ``scribbled_bg`` (% of the pixels of annotated frames), ``annotated`` (% of
    frames), ``object_speed`` / ``background_speed`` (mean true motion, px per frame) and
    ``flow_epe`` (end-point error of the estimated flow, px, on valid pixels) overall and on the
    salient object.
    """
    masks, scr, ann = data["masks"], data["scribbles"], data["annotated"]
    N, T = masks.shape[:2]
    area = masks.reshape(N * T, -1).mean(1)
    tf, ef, valid, layers = (data["true_flow"].astype(np.float32), data["flow"].astype(np.float32), data["valid"],
                             data["layers"])
    speed = np.hypot(tf[:, :, 0], tf[:, :, 1])
    epe = np.hypot(tf[:, :, 0] - ef[:, :, 0], tf[:, :, 1] - ef[:, :, 1])
    obj, bg = (layers == 2) & valid, (layers == 0) & valid
    ann_px = scr[ann]
    return {
        "clips": int(N), "frames_per_clip": int(T),
        "camouflaged": 100.0 * float(data["camouflaged"].mean()),
        "with_occluder": 100.0 * float(data["occluder"].mean()),
        "entering_or_leaving": 100.0 * float(data["enters_or_leaves"].mean()),
        "distractors": float(data["n_distractors"].mean()),
        "object_area": 100.0 * float(area[area > 0].mean()) if (area > 0).any() else float("nan"),
        "object_absent": 100.0 * float((area == 0).mean()),
        "annotated": 100.0 * float(ann.mean()),
        "scribbled_fg": 100.0 * float((ann_px == 1).mean()) if ann_px.size else 0.0,
        "scribbled_bg": 100.0 * float((ann_px == 2).mean()) if ann_px.size else 0.0,
        "object_speed": float(speed[obj].mean()) if obj.any() else float("nan"),
        "background_speed": float(speed[bg].mean()) if bg.any() else float("nan"),
        "flow_epe": float(epe[valid].mean()) if valid.any() else float("nan"),
        "flow_epe_object": float(epe[obj].mean()) if obj.any() else float("nan"),
    }
