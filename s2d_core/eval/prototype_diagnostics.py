"""Diagnostics of prototype methods: the seed cells a prototype is built from, with the hidden
sub-type of the object under each (synthetic data), and how well prototypes match them."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..densify.prototypes import classifier_cam, hierarchical_features, seed_masks, with_background


@torch.no_grad()
def collect_seed_cells(model, dataset, indices: Sequence[int] | None = None, levels: int = 4,
                       batch_size: int = 64, device: str | torch.device = "cpu") -> dict:
    """Every seed cell (of :func:`~s2d_core.densify.prototypes.seed_masks`) of some images.

    Returns a dict of arrays over the N cells: ``features`` (N, D) hierarchical features,
    ``channel`` (N,) 0 = background, c = class c; ``image`` (N,) data-set index; ``cell`` (N,)
    flat index in the ``grid`` (h, w); ``score`` (N,) the cell's CAM value for its channel
    (``1 - max CAM`` for the background); ``subtype`` (N,) the sub-type of the object at the
    cell's centre pixel (-1 off objects, or when the data set has no ``subtype_map``).
    """
    was_training = model.training
    model.eval()
    try:
        return _collect(model, dataset, indices, levels, batch_size, device)
    finally:
        model.train(was_training)


def _collect(model, dataset, indices, levels, batch_size, device) -> dict:
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    out: dict[str, list] = {k: [] for k in ("features", "channel", "image", "cell", "score", "subtype")}
    grid = None
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        items = [dataset[int(i)] for i in chunk]
        images = torch.stack([it["image"] for it in items]).to(device)
        tags = torch.stack([it["tags"] for it in items]).to(device)
        stages = model.stages(images)
        cams = classifier_cam(model, stages, tags)
        feats = hierarchical_features(stages, levels)
        seeds, scores = seed_masks(cams, tags), with_background(cams)
        h, w = feats.shape[-2:]
        grid = (h, w)
        H, W = images.shape[-2:]
        rows = ((np.arange(h) + 0.5) * H / h).astype(int)
        cols = ((np.arange(w) + 0.5) * W / w).astype(int)
        for b, i in enumerate(chunk):
            sub = (dataset.subtype_map(int(i))[np.ix_(rows, cols)].reshape(-1)
                   if hasattr(dataset, "subtype_map") else np.full(h * w, -1))
            s = seeds[b].flatten(1).cpu().numpy() > 0                      # (1 + C, n)
            for ch, cell in zip(*np.nonzero(s)):
                out["channel"].append(ch)
                out["cell"].append(cell)
                out["image"].append(int(i))
                out["subtype"].append(int(sub[cell]) if ch > 0 else -1)
            f = feats[b].flatten(1).T.cpu().numpy()
            sc = scores[b].flatten(1).cpu().numpy()
            chs, cells = np.nonzero(s)
            out["features"].append(f[cells])
            out["score"].append(sc[chs, cells])
    if grid is None:
        raise ValueError("collect_seed_cells: no images")
    res = {k: (np.concatenate(v) if k in ("features", "score") else np.asarray(v, dtype=np.int64))
           for k, v in out.items()}
    res["grid"] = grid
    return res


def best_match(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Cosine of each feature (N, D) to its most similar prototype (K, D): (N,)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    p = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True).clip(1e-12)
    return (f @ p.T).max(1)


__all__ = ["best_match", "collect_seed_cells"]
