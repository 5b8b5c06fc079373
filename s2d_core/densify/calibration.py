"""C3, ``mutual_calibration``: classifier / prototype mutual calibration (CPMC, IEEE TCSVT 2024), as we read it.

Two maps of one image disagree in instructive places. The classifier CAM is sharp but
incomplete (it fires on the emblem) and leaks onto co-occurring context; the prototype CAM
(:mod:`.prototypes`) is more complete but inherits whatever its seeds contain. C3 lets each
correct the other:

1. **context**: propagate the classifier CAM over a feature affinity, so cells with similar
   features share activation: :math:`\\tilde M = \\mathrm{norm}(A M)` with
   :math:`A_{pq} \\propto \\mathrm{ReLU}(\\cos(h_p, h_q))^{\\beta}` (rows sum to 1);
2. **prototype CAM** from the refined map's seeds: :math:`P = \\mathrm{softmax}_k(\\cos(h, p_k)/\\tau)`;
3. **discrepancy** at a threshold :math:`\\theta`: false negatives
   :math:`FN_c = [P_c > \\theta] \\wedge [\\tilde M_c \\le \\theta]` (the prototype finds a part the
   classifier misses), false positives :math:`FP_c = [\\tilde M_c > \\theta] \\wedge [P_c \\le \\theta]`;
4. **local prototypes**: the mean feature of each region. FN prototypes join their class
   (a cell scores :math:`\\max(\\cos(h, p_c), \\cos(h, p^{FN}_c))`), FP prototypes join the
   background (:math:`\\max(\\cos(h, p_{bg}), \\max_c \\cos(h, p^{FP}_c))`), giving the
   calibrated prototype CAM :math:`\\hat P`;
5. **training**: classification loss + :math:`\\lambda \\lVert [1 - \\max \\tilde M, \\tilde M] -
   [1 - \\textstyle\\sum \\hat P, \\hat P] \\rVert_1` over the background and tagged channels,
   each cell weighted by the target's certainty :math:`1 - H_2(\\hat P)` (our addition, see
   ``C3Config.certainty_weighting``: trained from scratch, the unweighted loss collapses).

Design choices the paper leaves open (all in :class:`~s2d_core.densify.config.C3Config`): the
affinity (cosine of hierarchical features raised to AffinityNet's power :math:`\\beta = 8`, one
step); binarising both
maps at :math:`\\theta = 0.5`; one local prototype per class and region type per image; the
calibrated map is a *target*: it is computed without gradients, so the consistency loss
teaches the classifier (and its features) to agree with it, while the prototypes follow the
classifier through the seeds (the "mutual" part); the inference output is the calibrated
prototype CAM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cam.base import MapMethod, max_normalise, register_method
from ..cam.config import CAMConfig
from ..models.classifier import Classifier
from .config import C3Config, PrototypeConfig
from .prototypes import (ConsistencyObjective, classifier_cam, consistency_l1, cosine_maps, entropy_weight,
                         hierarchical_features, probs_with_background, prototype_probs, region_prototypes, seed_masks,
                         with_background)


def context_refine(cams: torch.Tensor, features: torch.Tensor, power: float = 8.0) -> torch.Tensor:
    """One step of propagation over a feature affinity, then max-normalised.

    ``cams`` (B, C, h, w) >= 0, ``features`` (B, D, h, w). :math:`A_{pq} = \\mathrm{ReLU}(\\cos(f_p, f_q))^\\beta`
    normalised so every row sums to 1; returns :math:`\\mathrm{norm}(A M)` (B, C, h, w) in [0, 1].
    Gradients flow into ``cams``; the affinity follows ``features`` (detach them to keep it fixed).
    """
    if cams.shape[0] != features.shape[0] or cams.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"cams (B, C, h, w) {tuple(cams.shape)} and features (B, D, h, w) "
                         f"{tuple(features.shape)} must share B, h and w")
    f = F.normalize(features.flatten(2), dim=1)
    aff = F.relu(torch.einsum("bdn,bdm->bnm", f, f)).pow(power)
    aff = aff / aff.sum(-1, keepdim=True).clamp_min(1e-6)  # the diagonal is 1, so rows never vanish
    return max_normalise(torch.einsum("bnm,bcm->bcn", aff, cams.flatten(2)).view_as(cams))


def discrepancy(cams: torch.Tensor, probs: torch.Tensor, tags: torch.Tensor, threshold: float = 0.5):
    """False-negative and false-positive regions of the classifier CAM w.r.t. the prototype CAM.

    ``cams``, ``probs`` (B, C, h, w) in [0, 1]; returns two float masks (B, C, h, w):
    ``fn`` = prototype on, classifier off; ``fp`` = classifier on, prototype off (tagged classes only).
    """
    tagged = (tags > 0)[..., None, None]
    on_cls, on_proto = (cams > threshold) & tagged, (probs > threshold) & tagged
    return (on_proto & ~on_cls).to(cams.dtype), (on_cls & ~on_proto).to(cams.dtype)


def _local_scores(features: torch.Tensor, regions: torch.Tensor, min_region: int) -> torch.Tensor:
    """cos(h, mean feature of each region): (B, C, h, w); -inf where a region is too small."""
    protos, mass = region_prototypes(features, regions)
    return cosine_maps(features, protos).masked_fill(~(mass >= min_region)[..., None, None], float("-inf"))


def calibrated_scores(sims: torch.Tensor, features: torch.Tensor, fn: torch.Tensor, fp: torch.Tensor,
                      cfg: C3Config = C3Config()) -> torch.Tensor:
    """Step 4: add the local prototypes to the prototype scores.

    ``sims`` (B, 1 + C, h, w) cosines to the background and class prototypes; ``features``
    (B, D, h, w); ``fn``, ``fp`` (B, C, h, w) regions. A class scores
    :math:`\\max(\\cos(h, p_c), \\cos(h, p^{FN}_c))` (completion), the background
    :math:`\\max(\\cos(h, p_0), \\max_c \\cos(h, p^{FP}_c))` (suppression). Returns (B, 1 + C, h, w).
    """
    bg, cls = sims[:, :1], sims[:, 1:]
    if cfg.use_fn:  # a cell like the missed part belongs to the class
        cls = torch.maximum(cls, _local_scores(features, fn, cfg.min_region))
    if cfg.use_fp:  # a cell like the over-claimed part is background
        bg = torch.maximum(bg, _local_scores(features, fp, cfg.min_region).amax(1, keepdim=True))
    return torch.cat([bg, cls], 1)


def calibrate(model: Classifier, stages: list[torch.Tensor], tags: torch.Tensor,
              proto_cfg: PrototypeConfig = PrototypeConfig(), cfg: C3Config = C3Config()) -> dict:
    """Steps 1-4 at feature resolution. Returns a dict of (B, C, h, w) maps:

    ``cam`` the (refined) classifier CAM, differentiable; ``proto`` the prototype CAM;
    ``calibrated`` the calibrated prototype CAM; ``fn`` / ``fp`` the discrepancy regions
    (the last four without gradients).
    """
    cams = classifier_cam(model, stages, tags)
    with torch.no_grad():
        feats = hierarchical_features([s.detach() for s in stages], proto_cfg.levels)
    if cfg.refine:
        cams = context_refine(cams, feats, cfg.refine_power)
    with torch.no_grad():
        protos, _ = region_prototypes(feats, seed_masks(cams.detach(), tags))
        sims = cosine_maps(feats, protos)
        probs = prototype_probs(sims, tags, proto_cfg.temperature)
        fn, fp = discrepancy(cams.detach(), probs, tags, cfg.discrepancy_threshold)
        calibrated = prototype_probs(calibrated_scores(sims, feats, fn, fp, cfg), tags, proto_cfg.temperature)
    return {"cam": cams, "proto": probs, "calibrated": calibrated, "fn": fn, "fp": fp}


class C3Objective(ConsistencyObjective):
    """Training loss of C3: multi-label soft margin + ``loss_weight`` x L1 consistency (step 5)."""

    name = "c3"
    version = 1

    def __init__(self, proto_cfg: PrototypeConfig = PrototypeConfig(), cfg: C3Config = C3Config()) -> None:
        self.proto_cfg, self.cfg, self.loss_weight = proto_cfg, cfg, cfg.loss_weight

    def config(self) -> dict:
        # the read-out (``output``) does not change training: it stays out of the cache key
        return {"prototype": self.proto_cfg.to_dict(), "c3": {k: v for k, v in self.cfg.to_dict().items() if k != "output"}}

    def consistency(self, model: Classifier, stages: list[torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
        out = calibrate(model, stages, tags, self.proto_cfg, self.cfg)
        target = probs_with_background(out["calibrated"])
        weight = entropy_weight(target) if self.cfg.certainty_weighting else None
        return consistency_l1(with_background(out["cam"]), target, tags, weight)


class CalibratedCAM(MapMethod):
    """The C3 map over a classifier (trained with :class:`C3Objective`, or any other).

    >>> method = CalibratedCAM(classifier, CAMConfig(), C3Config(), PrototypeConfig())
    >>> maps = method(images, tags)     # (B, C, H, W) in [0, 1]
    """

    name = "mutual_calibration"

    def __init__(self, model: Classifier, cam_cfg: CAMConfig = CAMConfig(), cfg: C3Config = C3Config(),
                 proto_cfg: PrototypeConfig = PrototypeConfig(), model_key: str | None = None) -> None:
        super().__init__(model, cam_cfg, model_key)
        self.cfg, self.proto_cfg = cfg, proto_cfg

    def config(self) -> dict:
        return {**super().config(), "c3": self.cfg.to_dict(), "prototype": self.proto_cfg.to_dict()}

    def single(self, images: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        out = calibrate(self.model, self.model.stages(images), tags, self.proto_cfg, self.cfg)
        if self.cfg.output == "classifier":
            return out["cam"]
        if self.cfg.output == "mean":
            return (out["cam"] + out["calibrated"]) / 2
        return out["calibrated"]


register_method(
    "mutual_calibration", "classifier and prototype CAMs correct each other where they disagree; "
    "trained with an L1 consistency between them",
    lambda model, cfg, model_key=None, **_: CalibratedCAM(model, cfg.cam, cfg.c3, cfg.prototype, model_key),
    objective=lambda cfg: C3Objective(cfg.prototype, cfg.c3),
    aliases=("c3", "cpmc"), label="C3", paper="CPMC, TCSVT 2024", record_name="c3")

__all__ = ["C3Objective", "CalibratedCAM", "calibrate", "calibrated_scores", "context_refine", "discrepancy"]
