"""C4: several prototypes per class, balanced by optimal transport (POT, CVPR 2025), as we read it.

One prototype per class is a mean, and a mean of two different things resembles neither:
the seed region of an object holds its emblem *and* some of its body, and the body cells
far from that average fall below threshold; across images, the mean of three sub-types
(a striped, a dotted and a plain body) is none of them. C4 keeps ``K`` prototypes per
class instead and lets a cell match the closest one:

1. **confident features**: the seed cells of :func:`~.prototypes.seed_masks` (argmax over
   ``[1 - max CAM, CAM_c]``) of each class, in hierarchical features;
2. **cosine k-means** of each class's cells into K prototypes, whose assignment step is an
   entropic optimal transport plan (Sinkhorn, cost :math:`1 - \\cos`) from the cells (mass
   :math:`1/n` each) to the prototypes (capacities :math:`b_k`), so that one dominant prototype
   cannot swallow every cell:
   :math:`\\pi^* = \\arg\\min_{\\pi \\in \\Pi(1/n, b)} \\langle \\pi, C\\rangle - \\varepsilon H(\\pi)`,
   :math:`\\mu_k \\propto \\sum_i \\pi^*_{ik} x_i`. Capacities are uniform (:math:`1/K`) or
   *similarity-aware*, as in the paper: :math:`b_k = \\mathrm{softmax}_k(\\bar s_k / T)` with
   :math:`\\bar s_k` the mean CAM score of the cells cluster ``k`` holds, so significant
   clusters receive more mass (a low ``T`` gives one prototype nearly all of it, which is
   the collapse the transport was meant to prevent: ``T = 0.25`` by default);
3. **prototype CAM**: a cell's class score is its best match among the class's prototypes,
   :math:`s_c(q) = \\max_k \\cos(h(q), \\mu_{ck})`; the background has K prototypes too; a
   softmax at temperature :math:`\\tau` over the background and the tagged classes gives
   probabilities (as in :mod:`.prototypes`). The background keeps one prototype by default
   (``k_background``). With K = 1 this is the SIPE prototype CAM;
4. **training**: classification + consistency between the classifier CAM (with background
   ``1 - max``) and the prototype CAM (a target, without gradients), every cell and channel
   weighted by :math:`1 - H_2(P)` (binary entropy in bits), so uncertain cells count less.

Design choices the abstract leaves open (:class:`~s2d_core.config.C4Config`): prototypes
are image-specific by default (``scope="image"``; ``"dataset"`` pools confident cells of the
whole training set into one fixed bank); the significance score of a cell is its CAM value;
the class map is the max over prototypes; a fixed 50 Sinkhorn iterations per k-means step.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import C4Config, PrototypeConfig
from ..models.classifier import Classifier
from .ot import sinkhorn
from .prototypes import (MapMethod, classifier_cam, consistency_l1, entropy_weight, hierarchical_features,
                         probs_with_background, prototype_probs, seed_masks, with_background)


def _farthest_point_init(x: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """k well-spread starting centroids per group (deterministic): the feature closest to the
    group's mean, then repeatedly the feature least similar to every centroid chosen so far.
    x (G, N, D) unit rows, valid (G, N) -> (G, k, D)."""
    g = torch.arange(len(x), device=x.device)
    mean = F.normalize((x * valid[..., None]).sum(1), dim=-1)
    first = torch.einsum("gnd,gd->gn", x, mean).masked_fill(~valid, float("-inf")).argmax(1)
    chosen = [x[g, first]]
    best = torch.einsum("gnd,gd->gn", x, chosen[0]).masked_fill(~valid, float("inf"))
    for _ in range(1, k):
        chosen.append(x[g, best.argmin(1)])
        best = torch.maximum(best, torch.einsum("gnd,gd->gn", x, chosen[-1]))  # padding stays at +inf
    return torch.stack(chosen, 1)


def cosine_kmeans(x: torch.Tensor, k: int | torch.Tensor, iters: int = 10, assignment: str = "ot", epsilon: float = 0.05,
                  scores: torch.Tensor | None = None, capacity_temperature: float = 0.25,
                  mask: torch.Tensor | None = None, sinkhorn_iters: int = 50):
    """Cluster features on the unit sphere into ``k`` prototypes, many groups at once.

    Parameters
    ----------
    x : (N, D) features, or (G, N, D) for G independent groups (normalised here).
    k : prototypes per group, or a (G,) tensor of per-group counts (the output has max(k)
        slots); a group with n < k valid features gets n valid prototypes.
    assignment : ``"nearest"`` (plain spherical k-means: each feature to its most similar
        prototype) or ``"ot"`` (soft assignment = n x the Sinkhorn plan: rows sum to 1 and
        prototype ``k`` receives the share ``b_k`` of the features).
    scores : (N,) or (G, N) significance of each feature (e.g. its CAM value). Given, the
        capacities are ``b = softmax_k(mean score of cluster k / capacity_temperature)``
        (similarity-aware transport); None: uniform 1/k.
    mask : (N,) or (G, N) bool, which features are real (groups padded to one N).
    sinkhorn_iters : fixed iteration count of each transport (the balance only needs to be
        approximate inside k-means; a fixed count keeps a training step's cost fixed).

    Returns
    -------
    prototypes (k, D) / (G, k, D) unit vectors, their validity (k,) / (G, k), and the final
    soft assignment (N, k) / (G, N, k) (rows of valid features sum to 1).
    """
    single = x.ndim == 2
    if single:
        x = x[None]
        mask = None if mask is None else mask[None]
        scores = None if scores is None else scores[None]
    if x.ndim != 3 or x.shape[1] == 0:
        raise ValueError(f"x must be a non-empty (N, D) or (G, N, D) feature tensor, got shape {tuple(x.shape)}")
    if assignment not in ("ot", "nearest"):
        raise ValueError(f"assignment must be 'ot' or 'nearest', got {assignment!r}")
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.bool()
    if mask.shape != x.shape[:2] or (scores is not None and scores.shape != x.shape[:2]):
        raise ValueError(f"mask and scores must have shape {tuple(x.shape[:2])} like x's first dimensions")
    n = mask.sum(1)
    if (n == 0).any():
        raise ValueError("every group needs at least one valid feature")
    x = F.normalize(x, dim=-1) * mask[..., None]
    k_g = torch.as_tensor(k, device=x.device).expand(len(x))
    k = int(k_g.max())
    valid = torch.arange(k, device=x.device)[None] < torch.minimum(n, k_g)[:, None]  # (G, k)
    protos = _farthest_point_init(x, mask, k)
    a = mask.to(x.dtype) / n[:, None]
    q = None
    for _ in range(iters):
        sim = torch.einsum("gnd,gkd->gnk", x, protos)
        if assignment == "nearest":
            q = F.one_hot(sim.masked_fill(~valid[:, None], float("-inf")).argmax(-1), k).to(x.dtype)
        else:
            logits = torch.zeros_like(valid, dtype=x.dtype)
            if scores is not None:  # mean score of the cells each prototype currently holds
                near = F.one_hot(sim.masked_fill(~valid[:, None], float("-inf")).argmax(-1), k).to(x.dtype)
                near = near * mask[..., None]
                held = near.sum(1)
                logits = torch.einsum("gnk,gn->gk", near, scores.to(x.dtype)) / held.clamp_min(1)
                logits = torch.where(held > 0, logits, logits.new_zeros(())) / capacity_temperature
            b = logits.masked_fill(~valid, float("-inf")).softmax(1)
            q = sinkhorn(1 - sim, a, b, epsilon=epsilon, n_iters=sinkhorn_iters) * n[:, None, None].to(x.dtype)
        q = q * mask[..., None]
        mass = q.sum(1)
        new = F.normalize(torch.einsum("gnk,gnd->gkd", q, x), dim=-1)
        protos = torch.where((mass > 1e-6)[..., None], new, protos)  # an emptied prototype stays put
    if single:
        return protos[0], valid[0], q[0]
    return protos, valid, q


def image_prototypes(features: torch.Tensor, seeds: torch.Tensor, scores: torch.Tensor,
                     cfg: C4Config = C4Config()) -> tuple[torch.Tensor, torch.Tensor]:
    """K prototypes per image and channel from the image's own seed cells.

    ``features`` (B, D, h, w); ``seeds`` (B, 1 + C, h, w) one-hot; ``scores`` (B, 1 + C, h, w)
    the significance of each cell for each channel (background + CAMs). All (image, channel)
    pairs with seed cells are clustered in one batched call. Returns prototypes
    (B, 1 + C, K, D) and validity (B, 1 + C, K).
    """
    bsz, n_ch = seeds.shape[:2]
    d = features.shape[1]
    flat = features.flatten(2).transpose(1, 2)  # (B, n, D)
    seed_flat, score_flat = seeds.flatten(2) > 0, scores.flatten(2)  # (B, 1 + C, n)
    k = max(cfg.k, cfg.k_background)
    protos = features.new_zeros(bsz, n_ch, k, d)
    valid = torch.zeros(bsz, n_ch, k, dtype=torch.bool, device=features.device)
    bi, ci = torch.nonzero(seed_flat.any(2), as_tuple=True)
    if len(bi) == 0:
        return protos, valid
    k_g = torch.where(ci == 0, cfg.k_background, cfg.k)
    p, v, _ = cosine_kmeans(flat[bi], k_g, cfg.kmeans_iters, cfg.assignment, cfg.epsilon,
                            score_flat[bi, ci] if cfg.capacities == "weighted" else None,
                            cfg.capacity_temperature, seed_flat[bi, ci])
    protos[bi, ci], valid[bi, ci] = p, v
    return protos, valid


def multi_prototype_scores(features: torch.Tensor, protos: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Best cosine match among each channel's prototypes.

    ``features`` (B, D, h, w); ``protos`` (B, 1 + C, K, D) per image or (1 + C, K, D) shared;
    ``valid`` of the same leading shape. Returns (B, 1 + C, h, w) in [-1, 1]; a channel without
    any valid prototype scores -1.
    """
    if protos.ndim == 3:
        protos, valid = protos[None].expand(len(features), -1, -1, -1), valid[None].expand(len(features), -1, -1)
    sims = torch.einsum("bdhw,bckd->bckhw", F.normalize(features, dim=1), F.normalize(protos, dim=-1))
    return sims.masked_fill(~valid[..., None, None], -1.0).amax(2)


def multi_prototype_maps(model: Classifier, stages: list[torch.Tensor], tags: torch.Tensor,
                         proto_cfg: PrototypeConfig = PrototypeConfig(), cfg: C4Config = C4Config(),
                         bank: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Classifier CAM (differentiable) and multi-prototype CAM (no gradients) at feature resolution.

    Returns ``cam`` (B, C, h, w), ``probs`` (B, C, h, w), and the prototypes used
    (``protos``, ``valid``). ``bank``: shared (1 + C, K, D) prototypes (``scope="dataset"``);
    None: each image's own.
    """
    cams = classifier_cam(model, stages, tags)
    with torch.no_grad():
        feats = hierarchical_features([s.detach() for s in stages], proto_cfg.levels)
        if bank is None:
            c = cams.detach()
            protos, valid = image_prototypes(feats, seed_masks(c, tags), with_background(c), cfg)
        else:
            protos, valid = bank
        probs = prototype_probs(multi_prototype_scores(feats, protos, valid), tags, proto_cfg.temperature)
    return {"cam": cams, "probs": probs, "protos": protos, "valid": valid}


class C4Objective:
    """Training loss of C4: soft margin + ``loss_weight`` x entropy-weighted L1 consistency
    between the classifier CAM and the (image-specific) multi-prototype CAM."""

    name = "c4"

    def __init__(self, proto_cfg: PrototypeConfig = PrototypeConfig(), cfg: C4Config = C4Config()) -> None:
        from . import ot, prototypes

        self.proto_cfg, self.cfg = proto_cfg, cfg
        # training always uses per-image prototypes; the read-out fields do not change the
        # classifier, so they stay out of its cache key
        readout = {"output", "scope", "bank_per_class"}
        self.config = {"prototype": proto_cfg.to_dict(),
                       "c4": {k: v for k, v in cfg.to_dict().items() if k not in readout}}
        self.modules = [ot, prototypes, sys.modules[__name__]]

    def __call__(self, model: Classifier, batch: dict) -> torch.Tensor:
        images, tags = batch["image"], batch["tags"]
        stages = model.stages(images)
        logits = model.class_maps(stages[-1].mean((2, 3), keepdim=True)).flatten(1)
        loss = model.loss(logits, tags)
        if self.cfg.loss_weight == 0:
            return loss
        out = multi_prototype_maps(model, stages, tags, self.proto_cfg, self.cfg.replace(scope="image"))
        target = probs_with_background(out["probs"])
        return loss + self.cfg.loss_weight * consistency_l1(with_background(out["cam"]), target, tags,
                                                            entropy_weight(target))


@torch.no_grad()
def prototype_bank(model: Classifier, dataset: Dataset, proto_cfg: PrototypeConfig = PrototypeConfig(),
                   cfg: C4Config = C4Config(), batch_size: int = 64, device: str | torch.device = "cpu",
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset-level prototypes (``scope="dataset"``): K per channel from the seed cells of a set.

    One pass at scale 1 over ``dataset``; each channel keeps a uniform random sample of at most
    ``cfg.bank_per_class`` of its seed cells (every cell draws a seeded random key and the
    smallest keys are kept, batch by batch, so memory stays bounded on large sets); the samples
    are clustered by :func:`cosine_kmeans`. Returns prototypes (1 + C, K, D) and validity
    (1 + C, K), on ``device``.
    """
    from ..data.dataset import collate

    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None  # per channel: keys, cells, scores
    try:
        for b in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
            images, tags = b["image"].to(device), b["tags"].to(device)
            stages = model.stages(images)
            cams = classifier_cam(model, stages, tags)
            feats = hierarchical_features(stages, proto_cfg.levels).flatten(2).transpose(1, 2)  # (B, n, D)
            seeds, scores = seed_masks(cams, tags).flatten(2) > 0, with_background(cams).flatten(2)
            if kept is None:
                d = feats.shape[-1]
                kept = [(torch.empty(0), torch.empty(0, d), torch.empty(0)) for _ in range(seeds.shape[1])]
            for j in range(seeds.shape[1]):
                x, sc = feats[seeds[:, j]].float().cpu(), scores[:, j][seeds[:, j]].float().cpu()
                keys = torch.cat([kept[j][0], torch.rand(len(x), generator=gen)])
                x, sc = torch.cat([kept[j][1], x]), torch.cat([kept[j][2], sc])
                if len(keys) > cfg.bank_per_class:
                    top = keys.topk(cfg.bank_per_class, largest=False).indices
                    keys, x, sc = keys[top], x[top], sc[top]
                kept[j] = (keys, x, sc)
    finally:
        model.train(was_training)
    if kept is None:
        raise ValueError("prototype_bank: the data set is empty")
    k = max(cfg.k, cfg.k_background)
    d = kept[0][1].shape[1]
    protos, valid = torch.zeros(len(kept), k, d), torch.zeros(len(kept), k, dtype=torch.bool)
    present = [j for j in range(len(kept)) if len(kept[j][1]) > 0]
    if present:
        n_max = max(len(kept[j][1]) for j in present)
        x = torch.zeros(len(present), n_max, d)
        s = torch.zeros(len(present), n_max)
        m = torch.zeros(len(present), n_max, dtype=torch.bool)
        for i, j in enumerate(present):
            n = len(kept[j][1])
            x[i, :n], s[i, :n], m[i, :n] = kept[j][1], kept[j][2], True
        k_g = torch.tensor([cfg.k_background if j == 0 else cfg.k for j in present])
        p, v, _ = cosine_kmeans(x, k_g, cfg.kmeans_iters, cfg.assignment, cfg.epsilon,
                                s if cfg.capacities == "weighted" else None, cfg.capacity_temperature, m)
        protos[present], valid[present] = p, v
    return protos.to(device), valid.to(device)


class MultiPrototypeCAM(MapMethod):
    """The C4 map over a classifier: best match among K prototypes per class.

    >>> method = MultiPrototypeCAM(classifier, CAMConfig(), C4Config(), PrototypeConfig())
    >>> maps = method(images, tags)     # (B, C, H, W) in [0, 1]

    ``bank``: dataset-level prototypes from :func:`prototype_bank`, required when
    ``cfg.scope == "dataset"``.
    """

    name = "c4"

    def __init__(self, model: Classifier, cam_cfg, cfg: C4Config = C4Config(),
                 proto_cfg: PrototypeConfig = PrototypeConfig(),
                 bank: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__(model, cam_cfg, cfg)
        self.proto_cfg, self.bank = proto_cfg, bank
        if (cfg.scope == "dataset") != (bank is not None):
            raise ValueError(f"C4Config.scope={cfg.scope!r}: a prototype bank is "
                             f"{'required (see prototype_bank)' if bank is None else 'only used with scope=dataset'}")
        if bank is not None:
            n_ch = model.num_classes + 1
            if bank[0].ndim != 3 or bank[0].shape[0] != n_ch or bank[1].shape != bank[0].shape[:2]:
                raise ValueError(f"bank must be prototypes ({n_ch}, K, D) and validity ({n_ch}, K), got "
                                 f"{tuple(bank[0].shape)} and {tuple(bank[1].shape)}")

    @property
    def cache_key(self) -> dict | None:
        import hashlib

        key = super().cache_key
        if key is None:
            return None
        key = {**key, "prototype": self.proto_cfg.to_dict()}
        if self.bank is not None:
            h = hashlib.sha256(self.bank[0].detach().cpu().float().numpy().tobytes())
            h.update(self.bank[1].detach().cpu().numpy().tobytes())
            key["bank"] = h.hexdigest()[:16]
        return key

    def source_modules(self) -> list:
        from . import ot

        return [*super().source_modules(), ot]

    def single(self, images: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        bank = None if self.bank is None else (self.bank[0].to(images.device), self.bank[1].to(images.device))
        out = multi_prototype_maps(self.model, self.model.stages(images), tags, self.proto_cfg, self.method_cfg, bank)
        if self.method_cfg.output == "classifier":
            return out["cam"]
        if self.method_cfg.output == "mean":
            return (out["cam"] + out["probs"]) / 2
        return out["probs"]


__all__ = ["C4Objective", "MultiPrototypeCAM", "cosine_kmeans", "entropy_weight", "image_prototypes",
           "multi_prototype_maps", "multi_prototype_scores", "prototype_bank"]
