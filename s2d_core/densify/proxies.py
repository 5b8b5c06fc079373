"""C5, ``ot_proxy``: class token as proxy, OT-assisted (OTPL, Wang et al. ICCV 2025), as we read it.

**The token gap.** In a ViT with one class token per class, the class token ``t_c`` is
trained for classification: it resembles the patch tokens of the *discriminative* part (the
emblem), while the patch tokens ``p_i`` carry the whole object. A map of cosine similarity
to ``t_c`` alone is as incomplete as a CAM. OTPL moves the class token towards the patch
tokens that belong to its class:

1. **transport**: a plan :math:`\\Pi` (1 + C) x N between the proxies -- a background proxy
   and the image's class tokens -- and the patch tokens, cost :math:`1 - \\cos`, proxy masses
   :math:`a` (from the patch-token CAM, see ``C5Config.capacities``), token masses ``1/N``:
   :math:`\\Pi = \\arg\\min \\langle \\Pi, M \\rangle - \\varepsilon H(\\Pi)` (:func:`~s2d_core.densify.ot.sinkhorn`);
2. **proxy**: :math:`\\pi_c = \\mathrm{norm}(\\lambda \\hat t_c + (1 - \\lambda)\\,\\mathrm{norm}(\\sum_i
   \\tilde\\Pi_{ci} \\hat p_i))` with :math:`\\tilde\\Pi_{ci} = \\Pi_{ci} / \\sum_j \\Pi_{cj}`
   (hats: unit vectors, :math:`\\lambda` = ``mix``);
3. **CAM**: :math:`\\mathrm{CAM}_c(i) = \\mathrm{ReLU}(\\cos(p_i, \\pi_c))`, max-normalised;
4. **OT-enhanced contrastive loss**: token ``i`` is a confident member of proxy ``k`` when the
   plan gives ``k`` at least ``confidence`` of the token's mass,
   :math:`\\Pi_{ki} / \\sum_{k'} \\Pi_{k'i} \\ge \\kappa`. For every tagged class, with positives
   :math:`\\mathcal P_c` (its confident members) and negatives :math:`\\mathcal N_c` (confident
   members of the other classes and of the background),

   .. math:: \\mathcal L_{con} = -\\frac{1}{\\sum_c |\\mathcal P_c|} \\sum_c \\sum_{i \\in \\mathcal P_c}
             \\log \\frac{e^{\\cos(\\pi_c, p_i)/\\tau}}{e^{\\cos(\\pi_c, p_i)/\\tau}
             + \\sum_{j \\in \\mathcal N_c} e^{\\cos(\\pi_c, p_j)/\\tau}},

   so the proxy explores only as far as the confident tokens reach ("bounded exploration").
   Training loss: both heads' soft-margin losses + ``loss_weight`` x :math:`\\mathcal L_{con}`.

Design choices the abstract leaves open (all in :class:`~s2d_core.densify.config.C5Config`): the
background proxy is the mean of the ``background_fraction`` patch tokens with the lowest
patch-token CAM (there is no background class token); proxy masses follow the CAM's mass; one
transport step (the plan is computed from the class tokens, not re-solved with the new
proxies); the plan is a no-grad target, the proxies and tokens receive the gradients; negatives
come from the same image; the proxy CAM is the inference output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cam.base import MapMethod, max_normalise, register_method, restrict_to_tags
from ..cam.config import CAMConfig
from ..models.objective import Objective
from ..models.vit import ViTClassifier, tokens_to_grid
from .config import C5Config
from .ot import sinkhorn


def patch_cam(model: ViTClassifier, patch: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Max-normalised patch-token CAM :math:`\\mathrm{ReLU}(W_c^\\top p_i)` restricted to tags:
    patch tokens (B, N, D) -> (B, C, N) in [0, 1]."""
    maps = F.relu(patch @ model.head.weight.flatten(1).T).transpose(1, 2)[..., None]  # (B, C, N, 1)
    return restrict_to_tags(max_normalise(maps), tags)[..., 0]


def background_proxy(tokens: torch.Tensor, cam: torch.Tensor, fraction: float = 0.3) -> torch.Tensor:
    """Mean of the ``fraction`` of unit tokens (B, N, D) with the lowest ``cam`` (B, N), normalised: (B, D)."""
    k = max(1, round(fraction * tokens.shape[1]))
    idx = cam.topk(k, dim=1, largest=False).indices
    return F.normalize(tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1])).mean(1), dim=-1)


def proxy_masses(cam: torch.Tensor, tags: torch.Tensor, capacities: str = "cam") -> torch.Tensor:
    """Masses (B, 1 + C) of [background, classes] in the plan, each row summing to 1.

    ``"cam"``: class ``c`` gets :math:`\\sum_i \\mathrm{CAM}_c(i)`, the background
    :math:`\\sum_i (1 - \\max_c \\mathrm{CAM}_c(i))`; ``"uniform"``: 1 / (tags + 1) each.
    Untagged classes get 0 (their rows of the plan are exactly zero)."""
    present = torch.cat([torch.ones_like(tags[:, :1]), (tags > 0).to(tags.dtype)], 1).to(cam.dtype)
    if capacities == "uniform":
        mass = present
    elif capacities == "cam":
        fg = cam.sum(-1)  # (B, C)
        bg = (1 - cam.amax(1)).sum(-1, keepdim=True)
        mass = torch.cat([bg, fg], 1) * present + 1e-3 * present  # every present proxy keeps some mass
    else:
        raise ValueError(f"capacities must be 'cam' or 'uniform', got {capacities!r}")
    return mass / mass.sum(1, keepdim=True)


def proxy_maps(model: ViTClassifier, out: dict, tags: torch.Tensor, cfg: C5Config = C5Config()) -> dict:
    """Every quantity of steps 1-3 for the output ``out`` of ``model.tokens`` and tags (B, C).

    Returns a dict:

    * ``"proxies"`` (B, C, D) unit proxies :math:`\\pi_c` (zero for untagged classes),
    * ``"background"`` (B, D) the background proxy,
    * ``"plan"`` (B, 1 + C, N) the transport plan (no gradient), rows [background, classes],
    * ``"members"`` (B, 1 + C, N) bool, confident members of each proxy,
    * ``"cam"`` (B, C, N) the patch-token CAM, ``"class_cam"`` (B, C, N) the cosine to the class
      token alone (the token gap), ``"maps"`` (B, C, h, w) the proxy CAM in [0, 1].

    Gradients flow into the proxies and the tokens; the plan and the memberships are targets.
    """
    tags = tags.to(out["patch"].dtype)
    p = F.normalize(out["patch"], dim=-1)  # (B, N, D)
    t = F.normalize(out["class"], dim=-1)  # (B, C, D)
    b, n, _ = p.shape
    cam = patch_cam(model, out["patch"], tags)
    with torch.no_grad():
        bg = background_proxy(p, cam.amax(1), cfg.background_fraction)
        anchors = torch.cat([bg[:, None], t], 1).detach()  # (B, 1 + C, D)
        cost = (1 - anchors @ p.detach().transpose(1, 2)).clamp(0, 2)
        mass = proxy_masses(cam.detach().double(), tags.double(), cfg.capacities)  # float64: Sinkhorn checks totals to 1e-6
        plan = sinkhorn(cost.double(), mass, torch.full((b, n), 1.0 / n, dtype=torch.float64, device=p.device),
                        cfg.epsilon, n_iters=cfg.sinkhorn_iters).to(p.dtype)
        share = plan / plan.sum(1, keepdim=True).clamp_min(1e-12)
        members = (share >= cfg.confidence) & (share >= share.amax(1, keepdim=True))
        if cfg.assignment == "ot":
            weights = plan[:, 1:] / plan[:, 1:].sum(-1, keepdim=True).clamp_min(1e-12)
        else:  # the ablation without OT in the proxy: the top-k tokens most similar to the class token
            # (the plan still defines the contrastive loss's confident tokens)
            k = min(cfg.topk, n)
            idx = (t @ p.transpose(1, 2)).topk(k, dim=-1).indices
            weights = torch.zeros(b, t.shape[1], n, dtype=p.dtype, device=p.device).scatter_(-1, idx, 1.0 / k)
    u = F.normalize(weights @ p, dim=-1)  # (B, C, D) the tokens each class receives
    proxies = F.normalize(cfg.mix * t + (1 - cfg.mix) * u, dim=-1) * (tags > 0)[..., None]
    sim = proxies @ p.transpose(1, 2)  # (B, C, N)
    grid = out["grid"]
    maps = restrict_to_tags(max_normalise(tokens_to_grid(F.relu(sim).transpose(1, 2), grid)), tags)
    class_cam = restrict_to_tags(F.relu(t @ p.transpose(1, 2))[..., None], tags)[..., 0]
    return {"proxies": proxies, "background": bg, "plan": plan, "members": members, "cam": cam,
            "class_cam": class_cam, "maps": maps, "similarity": sim}


def proxy_contrastive_loss(similarity: torch.Tensor, members: torch.Tensor, tags: torch.Tensor,
                           temperature: float = 0.1) -> torch.Tensor:
    """The OT-enhanced contrastive loss :math:`\\mathcal L_{con}` (module docstring).

    ``similarity`` (B, C, N) cosines :math:`\\cos(\\pi_c, p_i)`; ``members`` (B, 1 + C, N) bool
    (background first); ``tags`` (B, C). Returns a scalar; 0 (still attached to the graph)
    when no tagged class has a confident token.
    """
    if members.shape[1] != similarity.shape[1] + 1 or members.shape[::2] != similarity.shape[::2]:
        raise ValueError(f"members must be (B, 1 + C, N) for similarity (B, C, N) {tuple(similarity.shape)}, "
                         f"got {tuple(members.shape)}")
    s = similarity / temperature
    pos = members[:, 1:] & (tags > 0)[..., None]  # (B, C, N)
    anyone = members.any(1, keepdim=True)  # confident for some proxy
    neg = anyone & ~members[:, 1:]
    lse_neg = torch.where(neg, s, torch.full_like(s, -torch.inf)).logsumexp(-1, keepdim=True)  # (B, C, 1)
    nll = torch.logaddexp(s, lse_neg.expand_as(s)) - s  # -log(e^s / (e^s + sum_neg e^s'))
    count = pos.sum()
    if count == 0:
        return similarity.sum() * 0.0
    return torch.where(pos, nll, torch.zeros_like(nll)).sum() / count


class C5Objective(Objective):
    """Training loss of C5: both heads' soft-margin losses + ``loss_weight`` x :math:`\\mathcal L_{con}`."""

    name = "c5"
    version = 1

    def __init__(self, cfg: C5Config = C5Config()) -> None:
        self.cfg = cfg

    def config(self) -> dict:
        return {"c5": self.cfg.to_dict()}

    def __call__(self, model: ViTClassifier, batch: dict) -> torch.Tensor:
        images, tags = batch["image"], batch["tags"]
        out = model.tokens(images)
        loss = model.tag_loss(out, tags)
        if self.cfg.loss_weight == 0:
            return loss
        st = proxy_maps(model, out, tags, self.cfg)
        return loss + self.cfg.loss_weight * proxy_contrastive_loss(st["similarity"], st["members"], tags,
                                                                    self.cfg.temperature)


class ProxyCAM(MapMethod):
    """The C5 proxy CAM over a ViT classifier, with the one signature of every map method.

    >>> method = ProxyCAM(vit_classifier, CAMConfig(), C5Config())
    >>> maps = method(images, tags)     # (B, C, H, W) in [0, 1]
    """

    name = "ot_proxy"

    def __init__(self, model: ViTClassifier, cam_cfg: CAMConfig = CAMConfig(), cfg: C5Config = C5Config(),
                 model_key: str | None = None) -> None:
        if not isinstance(model, ViTClassifier):
            raise TypeError(f"ProxyCAM needs a ViTClassifier (one class token per class), got {type(model).__name__}")
        super().__init__(model, cam_cfg, model_key)
        self.cfg = cfg

    def config(self) -> dict:
        return {**super().config(), "c5": self.cfg.to_dict()}

    def single(self, images: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        out = self.model.tokens(self.model.fit_size(images))
        return proxy_maps(self.model, out, tags, self.cfg)["maps"]


register_method(
    "ot_proxy", "each class token becomes a proxy moved towards the patch tokens optimal transport gives it; "
    "trained with an OT-enhanced contrastive loss",
    lambda model, cfg, model_key=None, **_: ProxyCAM(model, cfg.cam, cfg.c5, model_key),
    classifier="vit", objective=lambda cfg: C5Objective(cfg.c5),
    aliases=("c5", "otpl"), label="C5", paper="OTPL, ICCV 2025", record_name="c5")

__all__ = ["C5Objective", "ProxyCAM", "background_proxy", "patch_cam", "proxy_contrastive_loss", "proxy_maps",
           "proxy_masses"]
