"""C4, ``multi_prototype_ot``: several prototypes per class, balanced by optimal transport (POT, CVPR 2025), as we read it.

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

Design choices the abstract leaves open (:class:`~s2d_core.densify.config.C4Config`): prototypes
are image-specific by default (``scope="image"``; ``"dataset"`` pools confident cells of the
whole training set into one fixed bank); the significance score of a cell is its CAM value;
the class map is the max over prototypes; a fixed 50 Sinkhorn iterations per k-means step.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..cam.base import MapMethod, register_method
from ..cam.config import CAMConfig
from ..data import collate
from ..models.classifier import Classifier
from .config import C4Config, PrototypeConfig
from .kmeans import kmeans
from .prototypes import (ConsistencyObjective, classifier_cam, consistency_l1, entropy_weight, hierarchical_features,
                         probs_with_background, prototype_probs, seed_masks, with_background)


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
    p, v, _ = kmeans(flat[bi], k_g, cfg.kmeans_iters, cfg.assignment, cfg.epsilon,
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


class C4Objective(ConsistencyObjective):
    """Training loss of C4: soft margin + ``loss_weight`` x entropy-weighted L1 consistency
    between the classifier CAM and the (image-specific) multi-prototype CAM."""

    name = "c4"
    version = 1

    def __init__(self, proto_cfg: PrototypeConfig = PrototypeConfig(), cfg: C4Config = C4Config()) -> None:
        self.proto_cfg, self.cfg, self.loss_weight = proto_cfg, cfg, cfg.loss_weight

    def config(self) -> dict:
        # training always uses per-image prototypes; the read-out fields do not change the
        # classifier, so they stay out of its cache key
        readout = {"output", "scope", "bank_per_class"}
        return {"prototype": self.proto_cfg.to_dict(), "c4": {k: v for k, v in self.cfg.to_dict().items() if k not in readout}}

    def consistency(self, model: Classifier, stages: list[torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
        out = multi_prototype_maps(model, stages, tags, self.proto_cfg, self.cfg.replace(scope="image"))
        target = probs_with_background(out["probs"])
        return consistency_l1(with_background(out["cam"]), target, tags, entropy_weight(target))


@torch.no_grad()
def prototype_bank(model: Classifier, dataset: Dataset, proto_cfg: PrototypeConfig = PrototypeConfig(),
                   cfg: C4Config = C4Config(), batch_size: int = 64, device: str | torch.device = "cpu",
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset-level prototypes (``scope="dataset"``): K per channel from the seed cells of a set.

    One pass at scale 1 over ``dataset``; each channel keeps a uniform random sample of at most
    ``cfg.bank_per_class`` of its seed cells (every cell draws a seeded random key and the
    smallest keys are kept, batch by batch, so memory stays bounded on large sets); the samples
    are clustered by :func:`~.kmeans.kmeans`. Returns prototypes (1 + C, K, D) and validity
    (1 + C, K), on ``device``.
    """
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
        p, v, _ = kmeans(x, k_g, cfg.kmeans_iters, cfg.assignment, cfg.epsilon,
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

    name = "multi_prototype_ot"

    def __init__(self, model: Classifier, cam_cfg: CAMConfig = CAMConfig(), cfg: C4Config = C4Config(),
                 proto_cfg: PrototypeConfig = PrototypeConfig(),
                 bank: tuple[torch.Tensor, torch.Tensor] | None = None, model_key: str | None = None) -> None:
        super().__init__(model, cam_cfg, model_key)
        self.cfg, self.proto_cfg, self.bank = cfg, proto_cfg, bank
        if (cfg.scope == "dataset") != (bank is not None):
            raise ValueError(f"C4Config.scope={cfg.scope!r}: a prototype bank is "
                             f"{'required (see prototype_bank)' if bank is None else 'only used with scope=dataset'}")
        if bank is not None:
            n_ch = model.num_classes + 1
            if bank[0].ndim != 3 or bank[0].shape[0] != n_ch or bank[1].shape != bank[0].shape[:2]:
                raise ValueError(f"bank must be prototypes ({n_ch}, K, D) and validity ({n_ch}, K), got "
                                 f"{tuple(bank[0].shape)} and {tuple(bank[1].shape)}")

    def config(self) -> dict:
        out = {**super().config(), "c4": self.cfg.to_dict(), "prototype": self.proto_cfg.to_dict()}
        if self.bank is not None:
            h = hashlib.sha256(self.bank[0].detach().cpu().float().numpy().tobytes())
            h.update(self.bank[1].detach().cpu().numpy().tobytes())
            out["bank"] = h.hexdigest()[:16]
        return out

    def single(self, images: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        bank = None if self.bank is None else (self.bank[0].to(images.device), self.bank[1].to(images.device))
        out = multi_prototype_maps(self.model, self.model.stages(images), tags, self.proto_cfg, self.cfg, bank)
        if self.cfg.output == "classifier":
            return out["cam"]
        if self.cfg.output == "mean":
            return (out["cam"] + out["probs"]) / 2
        return out["probs"]


def _build(model, cfg, model_key=None, train_set=None, device="cpu", seed=0, **_) -> MultiPrototypeCAM:
    bank = None
    if cfg.c4.scope == "dataset":
        if train_set is None:
            raise ValueError("multi_prototype_ot with C4Config.scope='dataset' needs the training set for its bank")
        bank = prototype_bank(model, train_set, cfg.prototype, cfg.c4, device=device, seed=seed)
    return MultiPrototypeCAM(model, cfg.cam, cfg.c4, cfg.prototype, bank, model_key)


register_method(
    "multi_prototype_ot", "K prototypes per class from its seed features, balanced by optimal transport; "
    "trained with an entropy-weighted consistency",
    _build, objective=lambda cfg: C4Objective(cfg.prototype, cfg.c4),
    aliases=("c4", "pot"), label="C4", paper="POT, CVPR 2025", record_name="c4")

__all__ = ["C4Objective", "MultiPrototypeCAM", "entropy_weight", "image_prototypes", "multi_prototype_maps",
           "multi_prototype_scores", "prototype_bank"]
