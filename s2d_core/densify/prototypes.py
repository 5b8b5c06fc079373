"""Prototype CAMs: a class is what its most confident pixels look like (SIPE, CVPR 2022).

A classifier CAM answers "which features raise the class score?", and the answer is the most
discriminative part (the emblem) plus whatever co-occurs (the context). A *prototype* asks
"which pixels look like the ones we are sure of?" instead:

1. seeds: label every feature cell by the argmax over ``[1 - max_c CAM_c, CAM_c for tags]``
   (SIPE's background score: a cell is background where no class is confident);
2. prototypes: the mean (hierarchical) feature over each seed region, one per tagged class
   and one for the background, per image (image-specific prototypes):
   :math:`p_c = \\sum_q S_c(q) h(q) / \\sum_q S_c(q)`;
3. prototype CAM: cosine similarity of every cell to every prototype,
   :math:`s_c(q) = \\cos(h(q), p_c)`, turned into class probabilities by a softmax over the
   background and the tagged classes at temperature :math:`\\tau`:
   :math:`P_c(q) = e^{s_c(q)/\\tau} / \\sum_{k \\in \\{bg\\} \\cup \\text{tags}} e^{s_k(q)/\\tau}`.

SIPE reads its image-specific CAM (IS-CAM) as ``ReLU(cos)`` per channel with its own
background channel. Our pipeline gives every method the same exit (foreground maps in [0, 1]
and a swept background threshold ``t``), so we fold the background prototype in through the
softmax: thresholding :math:`P_c` at ``t`` is thresholding the margin
:math:`s_c - s_{bg}` at :math:`\\tau \\log(t / (1 - t))` (for one tagged class), and the
seed sweep becomes a sweep of that margin. ``t = 0.5`` is "nearest prototype wins".

Shapes: features ``(B, D, h, w)``, CAMs ``(B, C, h, w)`` over the C foreground classes,
tags ``(B, C)`` multi-hot, prototypes ``(B, K, D)``; channel 0 of a ``1 + C`` stack is the
background.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..cam.base import MapMethod, max_normalise, register_method, restrict_to_tags
from ..cam.config import CAMConfig
from ..models.classifier import Classifier
from ..models.objective import Objective
from .config import PrototypeConfig


def hierarchical_features(stages: Sequence[torch.Tensor], levels: int = 4) -> torch.Tensor:
    """The last ``levels`` backbone stages, each L2-normalised per cell, resized to the last
    stage's grid and concatenated: (B, sum D_i, h, w).

    Normalising each stage first makes the cosine of two concatenated vectors the mean of
    the per-stage cosines, so a wide stage (512 channels) does not drown a narrow one (128):
    low stages carry colour and texture, the last one carries class evidence (SIPE uses the
    same mix to reach the parts the classifier ignores).
    """
    if levels < 1 or levels > len(stages):
        raise ValueError(f"levels must be in [1, {len(stages)}] (the backbone has {len(stages)} stages), got {levels}")
    size = stages[-1].shape[-2:]
    out = []
    for f in stages[-levels:]:
        if f.shape[-2:] != size:
            f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
        out.append(F.normalize(f, dim=1))
    return torch.cat(out, 1)


def with_background(cams: torch.Tensor) -> torch.Tensor:
    """Prepend SIPE's background score ``1 - max_c CAM_c``: (B, C, h, w) in [0, 1] -> (B, 1 + C, h, w)."""
    return torch.cat([1 - cams.amax(1, keepdim=True), cams], 1)


def seed_masks(cams: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """One-hot seed regions (B, 1 + C, h, w): argmax over ``[1 - max CAM, CAM_c for tags]``.

    ``cams`` (B, C, h, w) in [0, 1] (max-normalised), ``tags`` (B, C). Every tagged class
    keeps at least its peak cell and the background at least its lowest cell, so each
    image has a prototype for each of them (a tagged class can lose every cell of the
    argmax to another class).
    """
    if cams.ndim != 4 or tags.shape != cams.shape[:2]:
        raise ValueError(f"cams must be (B, C, h, w) and tags (B, C); got {tuple(cams.shape)} and {tuple(tags.shape)}")
    tagged = tags > 0
    scores = with_background(restrict_to_tags(cams, tags))
    present = torch.cat([torch.ones_like(tagged[:, :1]), tagged], 1)
    scores = scores.masked_fill(~present[..., None, None], -1.0)
    seeds = F.one_hot(scores.argmax(1), cams.shape[1] + 1).permute(0, 3, 1, 2).to(cams.dtype)
    # guarantee a non-empty region for each present channel: its best-scoring cell
    flat = scores.flatten(2)
    peak = F.one_hot(flat.argmax(2), flat.shape[2]).to(cams.dtype).view_as(seeds)
    empty = (seeds.flatten(2).sum(2) == 0) & present
    return torch.where(empty[..., None, None], torch.maximum(seeds, peak), seeds) * present[..., None, None]


def region_prototypes(features: torch.Tensor, weights: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean feature of each region: features (B, D, h, w), weights (B, K, h, w) >= 0
    -> prototypes (B, K, D) and region mass (B, K) (0 where a region is empty)."""
    if features.shape[0] != weights.shape[0] or features.shape[-2:] != weights.shape[-2:]:
        raise ValueError(f"features (B, D, h, w) {tuple(features.shape)} and weights (B, K, h, w) "
                         f"{tuple(weights.shape)} must share B, h and w")
    mass = weights.flatten(2).sum(2)
    protos = torch.einsum("bkn,bdn->bkd", weights.flatten(2), features.flatten(2)) / (mass[..., None] + eps)
    return protos, mass


def cosine_maps(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every cell to every prototype: (B, D, h, w), (B, K, D) -> (B, K, h, w) in [-1, 1]."""
    if prototypes.ndim != 3 or prototypes.shape[-1] != features.shape[1]:
        raise ValueError(f"prototypes must be (B, K, D={features.shape[1]}), got {tuple(prototypes.shape)}")
    return torch.einsum("bdhw,bkd->bkhw", F.normalize(features, dim=1), F.normalize(prototypes, dim=-1))


def prototype_probs(scores: torch.Tensor, tags: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Softmax over the background and the tagged classes of similarity scores.

    ``scores`` (B, 1 + C, h, w): channel 0 the background, then the C classes; ``tags`` (B, C).
    Returns the foreground probabilities (B, C, h, w) in [0, 1], exactly 0 for untagged classes.
    """
    if scores.ndim != 4 or tags.shape != (scores.shape[0], scores.shape[1] - 1):
        raise ValueError(f"scores must be (B, 1 + C, h, w) and tags (B, C); got {tuple(scores.shape)} and {tuple(tags.shape)}")
    present = torch.cat([torch.ones_like(tags[:, :1], dtype=torch.bool), tags > 0], 1)
    logits = (scores / temperature).masked_fill(~present[..., None, None], float("-inf"))
    return logits.softmax(1)[:, 1:]


def classifier_cam(model: Classifier, stages: Sequence[torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
    """Max-normalised classifier CAM at feature resolution, restricted to tags: (B, C, h, w) in [0, 1]."""
    return restrict_to_tags(max_normalise(F.relu(model.class_maps(stages[-1]))), tags)


def prototype_cam_single(model: Classifier, images: torch.Tensor, tags: torch.Tensor,
                         cfg: PrototypeConfig = PrototypeConfig()) -> torch.Tensor:
    """SIPE-style prototype CAM of one scale, at feature resolution: (B, C, h, w) probabilities."""
    stages = model.stages(images)
    cams = classifier_cam(model, stages, tags)
    feats = hierarchical_features(stages, cfg.levels)
    protos, _ = region_prototypes(feats, seed_masks(cams, tags))
    return prototype_probs(cosine_maps(feats, protos), tags, cfg.temperature)


class PrototypeCAM(MapMethod):
    """SIPE-style prototype CAM over a trained classifier (no extra training).

    >>> method = PrototypeCAM(classifier, CAMConfig(), PrototypeConfig())
    >>> maps = method(images, tags)     # (B, C, H, W) in [0, 1]
    """

    name = "prototype_cam"

    def __init__(self, model: Classifier, cam_cfg: CAMConfig = CAMConfig(), cfg: PrototypeConfig = PrototypeConfig(),
                 model_key: str | None = None) -> None:
        super().__init__(model, cam_cfg, model_key)
        self.proto_cfg = cfg

    def config(self) -> dict:
        return {**super().config(), "prototype": self.proto_cfg.to_dict()}

    def single(self, images: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        return prototype_cam_single(self.model, images, tags, self.proto_cfg)


class ConsistencyObjective(Objective):
    """Soft margin on the tags + ``loss_weight`` x a consistency term between the classifier CAM
    and a prototype map (C3 and C4 differ only in that term: :meth:`consistency`)."""

    loss_weight: float = 1.0

    def consistency(self, model: Classifier, stages: list[torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def __call__(self, model: Classifier, batch: dict) -> torch.Tensor:
        images, tags = batch["image"], batch["tags"]
        stages = model.stages(images)
        logits = model.class_maps(stages[-1].mean((2, 3), keepdim=True)).flatten(1)
        loss = model.loss(logits, tags)
        if self.loss_weight == 0:
            return loss
        return loss + self.loss_weight * self.consistency(model, stages, tags)


def consistency_l1(pred: torch.Tensor, target: torch.Tensor, tags: torch.Tensor,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean L1 distance between two background + class stacks, optionally down-weighted.

    ``pred`` and ``target`` (B, 1 + C, h, w) in [0, 1]; only the background and the tagged
    channels count (untagged maps are zero on both sides by construction); ``weight``
    (B, 1 + C, h, w) in [0, 1] scales each entry. The sum is divided by the number of entries
    that count, *not* by the sum of the weights: uncertain targets then contribute (almost)
    nothing, instead of being rescaled back to full strength. Returns a scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    present = torch.cat([torch.ones_like(tags[:, :1], dtype=torch.bool), tags > 0], 1)[..., None, None]
    mask = present.to(pred.dtype).expand_as(pred)
    w = mask if weight is None else mask * weight
    return ((pred - target).abs() * w).sum() / mask.sum().clamp_min(1.0)


def entropy_weight(probs: torch.Tensor) -> torch.Tensor:
    """``1 - H_2(p)``: 1 for a certain cell (p = 0 or 1), 0 for p = 0.5. Any shape, p in [0, 1]."""
    p = probs.clamp(1e-6, 1 - 1e-6)
    return 1 + (p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)


def probs_with_background(probs: torch.Tensor) -> torch.Tensor:
    """Prepend the softmax's background probability ``1 - sum_c P_c``: (B, C, h, w) -> (B, 1 + C, h, w)."""
    return torch.cat([(1 - probs.sum(1, keepdim=True)).clamp_min(0), probs], 1)


register_method(
    "prototype_cam", "cosine similarity to the mean feature of each class's confident seed cells",
    lambda model, cfg, model_key=None, **_: PrototypeCAM(model, cfg.cam, cfg.prototype, model_key),
    aliases=("proto", "sipe"), paper="SIPE, CVPR 2022", record_name="proto")

__all__ = ["ConsistencyObjective", "PrototypeCAM", "classifier_cam", "consistency_l1", "cosine_maps", "entropy_weight",
           "hierarchical_features", "probs_with_background", "prototype_cam_single", "prototype_probs",
           "region_prototypes", "seed_masks", "with_background"]
