"""Diagnostics of the ViT track: token-level maps of one image, and how well tokens separate regions.

``token_panels`` gathers every map the "token gap" picture needs at token resolution; ``region_cosines``
measures whether the features of an object's body can be told from the background at all --
the precondition for any method that completes an object by feature similarity (prototypes,
proxies).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..cam.attention import class_attention_maps
from ..cam.config import AttentionConfig
from ..densify.config import C5Config
from ..densify.proxies import proxy_maps
from ..models.vit import ViTClassifier, tokens_to_grid


@torch.no_grad()
def token_panels(model: ViTClassifier, item: dict, cfg: C5Config = C5Config(), k: int | None = None) -> dict:
    """Token-level maps (h, w) of class ``k`` (0-based, default the first tag) for one data-set item.

    Returns a dict with ``"class-token attention"`` (last block), ``"attention rollout"``,
    ``"cosine to class token"``, ``"patch-token CAM"``, ``"plan: class row"`` and
    ``"plan: background row"`` (each divided by its max), ``"proxy CAM"``, plus ``"plan"``
    ((1 + C, N) numpy, rows [background, classes]) and ``"class"`` (k)."""
    if k is None:
        tagged = torch.nonzero(torch.as_tensor(item["tags"]))
        if len(tagged) == 0:
            raise ValueError("token_panels: the item has no tags; pass k= to choose a class")
        k = int(tagged[0, 0])
    was = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        x = model.fit_size(item["image"][None].to(dev))
        tags = torch.as_tensor(item["tags"])[None].to(dev, x.dtype)
        out = model.tokens(x)
        st = proxy_maps(model, out, tags, cfg)
        grid = out["grid"]
        as_grid = lambda v: tokens_to_grid(v.reshape(1, -1, 1), grid)[0, 0]  # noqa: E731 - (N,) -> (h, w)
        norm = lambda m: (m / m.max().clamp_min(1e-12)).cpu().numpy()  # noqa: E731
        att = class_attention_maps(model, x, AttentionConfig())[0, k]
        roll = class_attention_maps(model, x, AttentionConfig(rollout=True))[0, k]
        plan = st["plan"][0]
        return {"class-token attention": norm(att), "attention rollout": norm(roll),
                "cosine to class token": norm(as_grid(st["class_cam"][0, k])),
                "patch-token CAM": norm(as_grid(st["cam"][0, k])),
                "plan: class row": norm(as_grid(plan[1 + k])), "plan: background row": norm(as_grid(plan[0])),
                "proxy CAM": st["maps"][0, k].cpu().numpy(), "plan": plan.cpu().numpy(), "class": k}
    finally:
        model.train(was)


def _cells(label: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Majority label of each cell of a (H, W) label map on a (h, w) grid -> (h * w,)."""
    h, w = grid
    H, W = label.shape
    blocks = label[: H - H % h, : W - W % w].reshape(h, H // h, w, W // w).transpose(0, 2, 1, 3).reshape(h * w, -1)
    return np.array([np.bincount(b).argmax() for b in blocks])


def region_cosines(features: Sequence[torch.Tensor], items: Sequence[dict]) -> dict:
    """Mean cosine between feature cells of an image's regions, averaged over images.

    ``features``: per image a (D, h, w) feature map; ``items``: the data-set items (synthetic:
    with ``mask`` and ``emblem``). Every cell takes the majority label of its pixels: emblem,
    body (object, not emblem) or background. Returns the mean cosine for the pairs
    ``"body-body"``, ``"body-emblem"``, ``"body-background"`` and ``"background-background"``
    (distinct cells; images lacking a region are skipped for its pairs). When body-background
    is as high as body-body, no similarity-based method can grow a region from the emblem onto
    the body without also taking the background.
    """
    sums: dict[str, list[float]] = {"body-body": [], "body-emblem": [], "body-background": [], "background-background": []}
    for fmap, item in zip(features, items):
        if fmap.ndim != 3:
            raise ValueError(f"each feature map must have shape (D, h, w), got {tuple(fmap.shape)}")
        grid = (int(fmap.shape[-2]), int(fmap.shape[-1]))
        f = F.normalize(fmap.detach().flatten(1).T.float().cpu(), dim=1)  # (N, D)
        mask = np.asarray(item["mask"])
        emblem = np.asarray(item["emblem"])
        region = np.where(emblem > 0, 2, np.where((mask > 0) & (mask < 255), 1, 0))
        cells = _cells(region, grid)
        sim = (f @ f.T).numpy()
        groups = {"background": cells == 0, "body": cells == 1, "emblem": cells == 2}
        for pair in sums:
            a, b = pair.split("-")
            ia, ib = np.nonzero(groups[a])[0], np.nonzero(groups[b])[0]
            if len(ia) == 0 or len(ib) == 0:
                continue
            block = sim[np.ix_(ia, ib)]
            if a == b:
                if len(ia) < 2:
                    continue
                sums[pair].append(float((block.sum() - np.trace(block)) / (len(ia) * (len(ia) - 1))))
            else:
                sums[pair].append(float(block.mean()))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in sums.items()}


__all__ = ["region_cosines", "token_panels"]
