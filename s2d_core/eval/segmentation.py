"""Semantic segmentation metrics: a confusion matrix accumulated over a data set.

The protocol of PASCAL VOC (and chainercv): one ``(C, C)`` confusion matrix summed over
every pixel of every image, void pixels (255) ignored; per-class intersection over union

.. math::  \\mathrm{IoU}_c = \\frac{TP_c}{TP_c + FP_c + FN_c}

and mIoU the mean over classes that occur in the prediction or the ground truth
(``nanmean``: a class absent from both has no IoU, not an IoU of 0).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

VOID = 255
ArrayLike = np.ndarray | torch.Tensor


def _as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels (got dtype {x.dtype}); "
                        "take the argmax of scores before computing a confusion matrix")
    return x


def confusion_matrix(pred: ArrayLike, target: ArrayLike, num_classes: int,
                     ignore_index: int = VOID) -> np.ndarray:
    """Confusion matrix ``(C, C)`` int64; rows = ground truth, columns = prediction.

    Parameters
    ----------
    pred, target : integer label maps of the same shape, e.g. ``(H, W)`` or ``(B, H, W)``;
        ``target`` values are in ``[0, C)`` or ``ignore_index``.
    num_classes : ``C``, background included.
    ignore_index : target value excluded from the count (void).
    """
    p, t = _as_numpy(pred, "pred"), _as_numpy(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but target has shape {t.shape}; they must match")
    keep = t != ignore_index
    p, t = p[keep].astype(np.int64), t[keep].astype(np.int64)
    bad_t = (t < 0) | (t >= num_classes)
    if bad_t.any():
        raise ValueError(f"target holds label(s) {np.unique(t[bad_t]).tolist()} outside [0, {num_classes}) "
                         f"and not ignore_index={ignore_index}")
    bad_p = (p < 0) | (p >= num_classes)
    if bad_p.any():
        raise ValueError(f"pred holds label(s) {np.unique(p[bad_p]).tolist()} outside [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU ``(C,)`` from a confusion matrix; NaN for a class absent from both."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)


class SegmentationMeter:
    """Accumulates a confusion matrix over a data set; ``compute()`` gives the VOC metrics.

    Example
    -------
    >>> meter = SegmentationMeter(num_classes=3)
    >>> meter.update(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [2, 255]]))
    >>> meter.compute()["miou"]
    1.0
    """

    def __init__(self, num_classes: int, ignore_index: int = VOID,
                 class_names: Sequence[str] | None = None) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but num_classes={num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
        self.conf = np.zeros((num_classes, num_classes), np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike, pred_ignore: int | None = None) -> "SegmentationMeter":
        """Add a prediction ``(H, W)`` or batch ``(B, H, W)`` and its ground truth.

        ``pred_ignore``: a label the prediction may use for "no decision" (255 in pseudo masks
        with ignore bands); those pixels are left out, so the result measures the labelled
        pixels only and must be read together with their coverage.
        """
        if pred_ignore is not None:
            p = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
            t = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
            if p.shape != t.shape:  # before np.where, whose broadcasting would hide a mismatch
                raise ValueError(f"pred shape {p.shape} != target shape {t.shape}")
            pred = np.where(p == pred_ignore, 0, p)
            target = np.where(p == pred_ignore, self.ignore_index, t)
        self.conf += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        return self

    def reset(self) -> None:
        self.conf[:] = 0

    def compute(self) -> dict:
        """``{"miou", "iou" (C,), "pixel_acc", "confusion"}``; mIoU as the nanmean over classes."""
        if self.conf.sum() == 0:
            raise ValueError("SegmentationMeter.compute() called before any non-void pixel was added")
        iou = iou_from_confusion(self.conf)
        return {"miou": float(np.nanmean(iou)), "iou": iou,
                "pixel_acc": float(np.trace(self.conf) / self.conf.sum()),
                "confusion": self.conf.copy()}

    def table(self) -> str:
        """Per-class IoU as a Markdown table (percent)."""
        res = self.compute()
        rows = ["| class | IoU (%) |", "|---|---|"]
        rows += [f"| {n} | {'n/a' if np.isnan(v) else f'{100 * v:.1f}'} |" for n, v in zip(self.class_names, res["iou"])]
        rows.append(f"| **mean** | **{100 * res['miou']:.1f}** |")
        return "\n".join(rows)
