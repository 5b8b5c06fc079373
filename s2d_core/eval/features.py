"""What a backbone's features know, measured without any method: a linear probe and region cosines.

Every densifier of the book compares features (prototypes, transport plans, proxies, affinities)
and assumes they describe whole objects. Two method-independent measurements say whether they
do, and they are how the pretraining world and its recipes were frozen:

* :func:`linear_probe` -- can a *linear* read-out of the frozen features tell object cells from
  background cells? Logistic regression fit on some training images' cells, scored on other
  training images' cells (the benchmark's val split stays untouched);
* :func:`~s2d_core.eval.token_diagnostics.region_cosines` -- are the cells of an object's body
  more alike to each other than to the background?
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

__all__ = ["cell_labels", "feature_maps", "linear_probe"]


@torch.no_grad()
def feature_maps(model: torch.nn.Module, dataset, indices: Sequence[int], batch_size: int = 64,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """``model.features`` of some images: (n, D, h, w) float32 on the CPU (eval mode, restored after)."""
    was = model.training
    model.eval()
    try:
        out = []
        for s in range(0, len(indices), batch_size):
            x = torch.stack([dataset[int(i)]["image"] for i in indices[s:s + batch_size]]).to(device)
            out.append(model.features(x).float().cpu())
        return torch.cat(out)
    finally:
        model.train(was)


def cell_labels(masks: np.ndarray, grid: tuple[int, int], min_share: float = 0.75) -> np.ndarray:
    """Object (1) / background (0) label of every cell of a (h, w) grid over (n, H, W) masks, or -1
    for a mixed cell (neither share reaches ``min_share``) or one mostly void (255): (n, h, w) int8."""
    masks = np.asarray(masks)
    n, H, W = masks.shape
    h, w = grid
    if H % h or W % w:
        raise ValueError(f"mask size {H} x {W} is not a multiple of the feature grid {h} x {w}")
    blocks = masks.reshape(n, h, H // h, w, W // w).transpose(0, 1, 3, 2, 4).reshape(n, h, w, -1)
    valid = (blocks != 255).mean(-1)
    obj = ((blocks > 0) & (blocks != 255)).mean(-1) / np.maximum(valid, 1e-9)
    out = np.full((n, h, w), -1, np.int8)
    out[(valid >= 0.5) & (obj >= min_share)] = 1
    out[(valid >= 0.5) & (obj <= 1 - min_share)] = 0
    return out


def linear_probe(features: torch.Tensor | np.ndarray, masks: np.ndarray, fit_fraction: float = 0.5,
                 seed: int = 0, max_cells: int = 20000) -> dict:
    """Object vs background from frozen features by logistic regression.

    ``features`` (n, D, h, w) of n images, ``masks`` (n, H, W) their label maps. Cells are
    labelled by :func:`cell_labels` (mixed cells left out); the first ``fit_fraction`` of the
    *images* fit the probe (at most ``max_cells`` cells, drawn with ``seed``), the rest score it,
    so no image is in both. Returns ``balanced_accuracy`` (mean of the object and background
    recalls: 0.5 is chance), ``auc``, and the cell counts.

    .. math:: p(\\text{object} \\mid f) = \\sigma(w^\\top \\hat f + b), \\quad
              \\hat f = (f - \\mu) / \\sigma \\ \\text{(standardised on the fitting cells)}
    """
    f = torch.as_tensor(features).float().numpy()
    if f.ndim != 4 or len(f) != len(masks):
        raise ValueError(f"features must be (n, D, h, w) for the n={len(masks)} masks, got {tuple(f.shape)}")
    n, d, h, w = f.shape
    lab = cell_labels(masks, (h, w)).reshape(n, -1)
    cells = f.transpose(0, 2, 3, 1).reshape(n, h * w, d)
    n_fit = int(round(fit_fraction * n))
    if not 0 < n_fit < n:
        raise ValueError(f"fit_fraction={fit_fraction} leaves no images to fit or to score ({n} images)")

    def take(sl):
        x, y = cells[sl].reshape(-1, d), lab[sl].reshape(-1)
        keep = y >= 0
        return x[keep], y[keep]

    x_fit, y_fit = take(slice(0, n_fit))
    x_test, y_test = take(slice(n_fit, n))
    if len(np.unique(y_fit)) < 2 or len(np.unique(y_test)) < 2:
        raise ValueError("the probe needs object and background cells among both the fitting and the scored images")
    rng = np.random.default_rng(seed)
    if len(y_fit) > max_cells:
        pick = rng.choice(len(y_fit), max_cells, replace=False)
        x_fit, y_fit = x_fit[pick], y_fit[pick]
    scale = StandardScaler().fit(x_fit)
    clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(scale.transform(x_fit), y_fit)
    score = clf.decision_function(scale.transform(x_test))
    return {"balanced_accuracy": float(balanced_accuracy_score(y_test, score > 0)),
            "auc": float(roc_auc_score(y_test, score)), "fit_cells": int(len(y_fit)), "test_cells": int(len(y_test))}
