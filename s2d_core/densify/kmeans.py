r"""k-means, the one implementation of the book: batched, deterministic, cosine or Euclidean.

Two methods cluster features. C4 (:mod:`.multiproto`) clusters each class's seed features on
the unit sphere into K prototypes, with a balanced (optimal transport) assignment; C6
(:mod:`s2d_core.pseudo.prompts`) clusters a spectral embedding, or features and positions, into
groups that each get one prompt point. Both are this function:

1. **initialise** deterministically by farthest points: the first centre is the feature
   ``first`` (C6: the CAM's peak) or, by default, the feature closest to the group's mean
   (cosine) or its centroid (Euclidean); each next centre is the feature farthest from every
   centre chosen so far;
2. **assign**: ``"nearest"`` gives each feature to its nearest centre (Lloyd); ``"ot"`` (cosine
   only) is the soft assignment :math:`q = n \pi^*` of an entropic transport plan
   :math:`\pi^* = \arg\min_{\pi \in \Pi(1/n, b)} \langle \pi, 1 - \cos \rangle - \varepsilon H(\pi)`
   from the features (mass :math:`1/n` each) to the centres (capacities :math:`b_k`), so that one
   dominant centre cannot swallow every feature;
3. **update** each centre to the (weighted) mean of its features, normalised for cosine;
   a centre that received nothing stays where it is.

Many independent groups (G) are clustered in one call, padded to a common N with ``mask``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ot import sinkhorn

__all__ = ["kmeans"]


def _distance_like(x: torch.Tensor, c: torch.Tensor, metric: str) -> torch.Tensor:
    """(G, N, k) scores where *larger is closer*: cosine similarity, or minus the squared distance."""
    if metric == "cosine":
        return torch.einsum("gnd,gkd->gnk", x, c)
    return -((x[:, :, None] - c[:, None]) ** 2).sum(-1)


def _score_to(x: torch.Tensor, c: torch.Tensor, metric: str) -> torch.Tensor:
    """(G, N) closeness of every feature to one centre per group ``c`` (G, D); larger is closer."""
    if metric == "cosine":
        return torch.einsum("gnd,gd->gn", x, c)
    return -((x - c[:, None]) ** 2).sum(-1)


def _farthest_point_init(x: torch.Tensor, valid: torch.Tensor, k: int, metric: str = "cosine",
                         first: torch.Tensor | None = None) -> torch.Tensor:
    """k well-spread starting centres per group (deterministic). x (G, N, D) (unit rows for
    cosine), valid (G, N), first (G,) index of the first centre or None -> (G, k, D)."""
    g = torch.arange(len(x), device=x.device)
    if first is None:
        if metric == "cosine":
            mean = F.normalize((x * valid[..., None]).sum(1), dim=-1)
        else:
            mean = (x * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1)
        first = _score_to(x, mean, metric).masked_fill(~valid, float("-inf")).argmax(1)
    chosen = [x[g, first]]
    best = _score_to(x, chosen[0], metric).masked_fill(~valid, float("inf"))
    for _ in range(1, k):
        chosen.append(x[g, best.argmin(1)])
        best = torch.maximum(best, _score_to(x, chosen[-1], metric))  # padding stays at +inf
    return torch.stack(chosen, 1)


def kmeans(x: torch.Tensor, k: int | torch.Tensor, iters: int = 10, assignment: str = "ot", epsilon: float = 0.05,
           scores: torch.Tensor | None = None, capacity_temperature: float = 0.25,
           mask: torch.Tensor | None = None, sinkhorn_iters: int = 50, metric: str = "cosine",
           first: torch.Tensor | int | None = None):
    """Cluster features into ``k`` centres, many groups at once (module docstring).

    Parameters
    ----------
    x : (N, D) features, or (G, N, D) for G independent groups (normalised here for cosine).
    k : centres per group, or a (G,) tensor of per-group counts (the output has max(k)
        slots); a group with n < k valid features gets n valid centres.
    assignment : ``"nearest"`` (Lloyd) or ``"ot"`` (soft assignment = n x the Sinkhorn plan:
        rows sum to 1 and centre ``k`` receives the share ``b_k`` of the features; cosine only).
    scores : (N,) or (G, N) significance of each feature (e.g. its CAM value). Given, the OT
        capacities are ``b = softmax_k(mean score of cluster k / capacity_temperature)``
        (similarity-aware transport); None: uniform 1/k.
    mask : (N,) or (G, N) bool, which features are real (groups padded to one N).
    sinkhorn_iters : fixed iteration count of each transport (the balance only needs to be
        approximate inside k-means; a fixed count keeps a training step's cost fixed).
    metric : ``"cosine"`` (spherical k-means, unit-vector centres) or ``"euclidean"``.
    first : index (or (G,) indices) of the feature that is the first centre; None: the one
        closest to the group's mean.

    Returns
    -------
    centres (k, D) / (G, k, D) (unit vectors for cosine), their validity (k,) / (G, k), and the
    final assignment (N, k) / (G, N, k) (rows of valid features sum to 1; one-hot for
    ``"nearest"``: ``q.argmax(-1)`` are the labels).
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
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if metric == "euclidean" and assignment == "ot":
        raise ValueError("the OT assignment uses the cosine cost: use metric='cosine' with assignment='ot'")
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.bool()
    if mask.shape != x.shape[:2] or (scores is not None and scores.shape != x.shape[:2]):
        raise ValueError(f"mask and scores must have shape {tuple(x.shape[:2])} like x's first dimensions")
    n = mask.sum(1)
    if (n == 0).any():
        raise ValueError("every group needs at least one valid feature")
    x = (F.normalize(x, dim=-1) if metric == "cosine" else x) * mask[..., None]
    k_g = torch.as_tensor(k, device=x.device).expand(len(x))
    k = int(k_g.max())
    valid = torch.arange(k, device=x.device)[None] < torch.minimum(n, k_g)[:, None]  # (G, k)
    if first is not None:
        first = torch.as_tensor(first, device=x.device).reshape(-1).expand(len(x))
    protos = _farthest_point_init(x, mask, k, metric, first)
    a = mask.to(x.dtype) / n[:, None]
    q = None
    for _ in range(iters):
        sim = _distance_like(x, protos, metric)
        if assignment == "nearest":
            new_q = F.one_hot(sim.masked_fill(~valid[:, None], float("-inf")).argmax(-1), k).to(x.dtype) * mask[..., None]
            if q is not None and torch.equal(new_q, q):  # a fixed point: more iterations change nothing
                break
            q = new_q
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
        new = torch.einsum("gnk,gnd->gkd", q, x)
        new = F.normalize(new, dim=-1) if metric == "cosine" else new / mass[..., None].clamp_min(1e-12)
        protos = torch.where((mass > 1e-6)[..., None], new, protos)  # an emptied centre stays put
    if q is None:  # iters == 0: the assignment to the initial centres
        q = F.one_hot(_distance_like(x, protos, metric).masked_fill(~valid[:, None], float("-inf")).argmax(-1),
                      k).to(x.dtype) * mask[..., None]
    if single:
        return protos[0], valid[0], q[0]
    return protos, valid, q
