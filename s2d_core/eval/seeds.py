"""Evaluation of CAM seeds, the field's protocol.

A CAM gives one score map per foreground class. To turn it into a label map, the
background gets a constant score ``t`` and each pixel takes the argmax over
``[t, CAM_c for c in the image's tags]`` (:func:`s2d_core.pseudo.masks.seeds_from_cam`):

.. math::  \\hat y(p) = \\begin{cases} \\arg\\max_{c \\in \\mathcal{T}} \\mathrm{CAM}_c(p)
           & \\text{if } \\max_{c \\in \\mathcal{T}} \\mathrm{CAM}_c(p) > t \\\\ 0 & \\text{otherwise} \\end{cases}

Sweeping ``t`` and reporting the best mIoU (and its ``t``) is how papers quote "seed mIoU"
(e.g. about 48% for a ResNet-50 CAM on VOC train). Restricting to the tags is what makes
this a *seed* evaluation: the classifier's image-level decision is assumed correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..arrays import to_numpy
from ..data import fixed_size
from ..pseudo.masks import seeds_from_cam, tag_argmax
from ..tables import to_markdown
from .segmentation import VOID, iou_from_confusion

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))

__all__ = ["DEFAULT_THRESHOLDS", "SeedComparison", "compare_methods", "evaluate_cam_method", "seeds_from_cam",
           "sweep_thresholds"]


def sweep_thresholds(cams: Iterable, tags: Iterable, masks: Iterable, num_classes: int,
                     thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                     ignore_index: int = VOID) -> dict:
    """Seed mIoU for every background threshold, accumulated over a data set.

    Parameters
    ----------
    cams : iterable of ``(C_fg, H, W)`` CAMs, values in [0, 1] (normalised per class).
    tags : iterable of ``(C_fg,)`` multi-hot tags, same order.
    masks : iterable of ``(H, W)`` ground-truth label maps (0..C_fg, 255 void).
    num_classes : ``C_fg + 1`` (background included).
    thresholds : background scores to try.

    Returns
    -------
    ``{"thresholds" (T,), "miou" (T,), "iou" (T, C), "best_threshold", "best_miou", "best_iou" (C,)}``
    """
    th = np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D sequence, got shape {th.shape}")
    conf = np.zeros((th.size, num_classes, num_classes), np.int64)
    n = 0
    for cam, tag, mask in zip(cams, tags, masks):
        cam, tag, mask = to_numpy(cam).astype(np.float64), to_numpy(tag), to_numpy(mask).astype(np.int64)
        if cam.shape[1:] != mask.shape:
            raise ValueError(f"image {n}: cam spatial shape {cam.shape[1:]} != mask shape {mask.shape}")
        if cam.shape[0] != num_classes - 1:
            raise ValueError(f"image {n}: cam has {cam.shape[0]} channels, expected num_classes - 1 = {num_classes - 1}")
        score, label = tag_argmax(cam, tag)
        keep = mask != ignore_index
        gt, score, label = mask[keep], score[keep], label[keep]
        # One pass per threshold over the kept pixels: cheap compared to the CAM itself.
        for i, t in enumerate(th):
            pred = np.where(score > t, label, 0)
            conf[i] += np.bincount(gt * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)
        n += 1
    if n == 0:
        raise ValueError("sweep_thresholds got no images")
    iou = np.stack([iou_from_confusion(c) for c in conf])
    miou = np.nanmean(iou, axis=1)
    b = int(np.argmax(miou))
    return {"thresholds": th, "miou": miou, "iou": iou, "best_threshold": float(th[b]),
            "best_miou": float(miou[b]), "best_iou": iou[b], "n_images": n}


def evaluate_cam_method(method, dataset, indices: Sequence[int] | None = None, batch_size: int = 64,
                        device: str | torch.device = "cpu", thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict:
    """Run a CAM ``method(images, tags) -> (B, C, H, W)`` over (a subset of) a same-size data set
    and sweep the background threshold.

    Returns the :func:`sweep_thresholds` dict plus ``"cams"`` (n, C, H, W) float16, ``"tags"``
    (n, C), ``"masks"`` (n, H, W) and ``"indices"``, so a chapter can compare methods on the
    same images without re-running them.
    """
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    if idx.size == 0:
        raise ValueError("evaluate_cam_method: no images to evaluate (indices is empty)")
    if not fixed_size(dataset):
        raise ValueError(f"evaluate_cam_method needs a data set whose images share one size (synthetic); "
                         f"{type(dataset).__name__} is not one: use compute_cams + sweep_thresholds")
    cams, tags, masks = [], [], []
    for start in range(0, len(idx), batch_size):
        items = [dataset[int(i)] for i in idx[start:start + batch_size]]
        images = torch.stack([it["image"] for it in items]).to(device)
        tag = torch.stack([it["tags"] for it in items]).to(device)
        cams.append(to_numpy(method(images, tag)).astype(np.float16))
        tags.append(to_numpy(tag))
        masks.extend(to_numpy(it["mask"]) for it in items)
    cams, tags, masks = np.concatenate(cams), np.concatenate(tags), np.stack(masks)
    out = sweep_thresholds(cams, tags, masks, dataset.num_classes, thresholds)
    return {**out, "cams": cams, "tags": tags, "masks": masks, "indices": idx}


@dataclass
class SeedComparison:
    """Seed mIoU of several map methods on the same images: ``results[name]`` is the
    :func:`evaluate_cam_method` dict of method ``name``; shows itself as a Markdown table."""

    results: dict[str, dict] = field(default_factory=dict)

    def table(self, names: Sequence[str] | None = None) -> str:
        """``| map | seed mIoU (best t) |`` rows in percent, for ``names`` (default: all, in order)."""
        names = list(names or self.results)
        cells = [f"{100 * self.results[n]['best_miou']:.1f} ({self.results[n]['best_threshold']:.2f})" for n in names]
        return to_markdown(pd.DataFrame({"map": names, "seed mIoU (best t)": cells}))

    def _repr_markdown_(self) -> str:
        return self.table()

    def __getitem__(self, name: str) -> dict:
        return self.results[name]


def compare_methods(methods: Mapping[str, object], dataset, indices: Sequence[int] | None = None,
                    device: str | torch.device = "cpu", into: SeedComparison | None = None) -> SeedComparison:
    """:func:`evaluate_cam_method` for every ``name -> method`` on the same images (an ablation);
    ``into`` adds the rows to an earlier comparison. Displayed in a notebook, it is the table."""
    out = into if into is not None else SeedComparison()
    for name, method in methods.items():
        out.results[name] = evaluate_cam_method(method, dataset, indices, device=device)
    return out
