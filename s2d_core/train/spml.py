"""Pixel-to-segment contrastive learning (SPML; Ke, Hwang and Yu, ICLR 2021): the segment machinery
and the loss, written from the paper and from reading the released code (twke18/SPML, MIT).

Every pixel has a unit embedding :math:`e_i` (:class:`~s2d_core.models.embedding.EmbeddingNet`).
An image is cut into **segments**: spherical k-means of the embedding with its position (a
regular grid start), then split by low-level regions (superpixels here; HED + OWT-UCM in the paper)
and by labels. A segment's prototype is the normalised mean of its members. The loss pulls each
pixel towards the prototypes of its *positive* segments and away from the others (SegSort's
NCA-like form), once per **relation**:

.. math::  \\mathcal{L}_i = -\\log \\frac{\\sum_{p \\in P^+(i) \\setminus \\{s(i)\\}} e^{\\kappa \\langle e_i, \\mu_p\\rangle}}
           {\\sum_{p \\in P^+(i) \\setminus \\{s(i)\\}} e^{\\kappa \\langle e_i, \\mu_p\\rangle} + \\sum_{p \\in P^-(i)} e^{\\kappa \\langle e_i, \\mu_p\\rangle}}

(own segment :math:`s(i)` excluded; it stands in for the positives only when there is no other one):

* **low-level similarity** -- positives: the other segments of the pixel's low-level region in the
  same image (embedding with position); every pixel takes part, labelled or not;
* **semantic annotation** -- labelled pixels only; positives: segments of the same class anywhere in
  the batch and the memory of earlier batches;
* **co-occurrence** -- every pixel; positives: segments of images that share a tag with the pixel's image;
* feature affinity is off, as in the released VOC settings.

Label maps use :data:`UNLABELLED` for pixels that are present but carry no label (they are clustered
and take part in the low-level and co-occurrence terms) and :data:`IGNORE` for padding (removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.embedding import EmbeddingClassifier
from ..progress import progress as progress_bar
from ..pseudo.config import CRFConfig
from ..pseudo.crf import crf_probs

__all__ = ["IGNORE", "RELEASED", "SPMLLoss", "SPMLObjective", "UNLABELLED", "build_memory", "cell_labels", "cell_regions", "cluster_image", "Segments", "annotation_positives",
           "cooccurrence_positives", "fit_classifier", "grid_init", "propagate_labels", "position_features", "segment", "segsort_loss",
           "random_walk", "segment_retrieval", "similarity_positives", "spherical_kmeans"]

UNLABELLED = 254
"""Label of a pixel that is present but unlabelled (clustered, not annotated)."""
IGNORE = 255
"""Label of padding: removed before clustering and from every loss."""


def position_features(h: int, w: int, device=None) -> torch.Tensor:
    """(2, h, w) row and column coordinates in [-0.5, 0.5] (relative to the map, as in SPML)."""
    ys = torch.linspace(0, 1, h, device=device) - 0.5
    xs = torch.linspace(0, 1, w, device=device) - 0.5
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"))


def grid_init(h: int, w: int, k: int, device=None) -> torch.Tensor:
    """(h, w) initial cluster of every cell: a regular ``k x k`` grid of blocks."""
    rows = torch.round(torch.linspace(0, k - 1, h, device=device)).long()
    cols = torch.round(torch.linspace(0, k - 1, w, device=device)).long()
    return rows[:, None] * k + cols[None, :]


@torch.no_grad()
def spherical_kmeans(x: torch.Tensor, labels: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Spherical k-means from an initial assignment.

    ``x``: (N, D) unit vectors; ``labels``: (N,) initial cluster ids in [0, K). Each iteration sets a
    centre to the normalised sum of its members and moves every vector to the centre of largest
    cosine; an empty cluster keeps no centre. Returns (N,) cluster ids.
    """
    labels = labels.clone()
    k = int(labels.max()) + 1 if len(labels) else 0
    for _ in range(iterations):
        centres = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, labels, x)
        empty = centres.norm(dim=1) == 0
        centres = F.normalize(centres, dim=1)
        sim = x @ centres.t()
        sim[:, empty] = -2.0
        new = sim.argmax(1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels


@dataclass
class Segments:
    """Segments of a batch. Per kept pixel (``N`` of them): ``pixel_segment`` (N,) index into the
    segments, ``pixel_label`` (N,), ``pixel_image`` (N,), ``pixel_region`` (N,). Per segment (``S``):
    ``prototype`` (S, D) normalised mean embedding, ``prototype_loc`` (S, D + 2) with position,
    ``label``, ``region``, ``image`` (S,), and ``tags`` (S, C) the tags of its image. ``keep`` is the
    (B, h, w) mask of the pixels kept (label != IGNORE)."""

    pixel_segment: torch.Tensor
    pixel_label: torch.Tensor
    pixel_image: torch.Tensor
    pixel_region: torch.Tensor
    prototype: torch.Tensor
    prototype_loc: torch.Tensor
    label: torch.Tensor
    region: torch.Tensor
    image: torch.Tensor
    tags: torch.Tensor
    keep: torch.Tensor


def segment(embedding: torch.Tensor, labels: torch.Tensor, regions: torch.Tensor, tags: torch.Tensor,
            grid: int = 3, iterations: int = 10) -> tuple[Segments, torch.Tensor, torch.Tensor]:
    """Cut every image of a batch into segments (module docstring).

    Parameters
    ----------
    embedding : (B, D, h, w) unit embeddings (gradients flow into the prototypes, not the clustering).
    labels : (B, h, w) int64: classes 0..C-1, :data:`UNLABELLED`, :data:`IGNORE`.
    regions : (B, h, w) int64 low-level region ids (e.g. superpixels), per image.
    tags : (B, C) multi-hot image tags (background excluded by the caller if it is not a tag).
    grid, iterations : the k-means grid start (``grid x grid`` clusters) and iterations.

    Returns ``(segments, pixel_embedding (N, D), pixel_embedding_loc (N, D + 2))``.
    """
    B, D, h, w = embedding.shape
    if labels.shape != (B, h, w) or regions.shape != (B, h, w):
        raise ValueError(f"labels and regions must be (B, h, w) = {(B, h, w)}, got {tuple(labels.shape)} and "
                         f"{tuple(regions.shape)}")
    pos = position_features(h, w, embedding.device)
    init = grid_init(h, w, grid, embedding.device)
    seg_of = []
    offset = 0
    pix_e, pix_l, pix_lab, pix_img, pix_reg = [], [], [], [], []
    for b in range(B):
        keep = labels[b] != IGNORE
        e = embedding[b].permute(1, 2, 0)[keep]                                 # (n, D)
        loc = F.normalize(torch.cat([e, pos.permute(1, 2, 0)[keep]], 1), dim=1)  # (n, D + 2)
        cluster = spherical_kmeans(loc.detach(), init[keep], iterations)
        # a segment = one cluster x one label x one region
        key = torch.stack([cluster, labels[b][keep], regions[b][keep]], 1)
        _, local = torch.unique(key, dim=0, return_inverse=True)
        seg_of.append(local + offset)
        offset += int(local.max()) + 1 if len(local) else 0
        pix_e.append(e)
        pix_l.append(loc)
        pix_lab.append(labels[b][keep])
        pix_img.append(torch.full((len(e),), b, dtype=torch.long, device=e.device))
        pix_reg.append(regions[b][keep])
    pixel_segment = torch.cat(seg_of)
    e, loc = torch.cat(pix_e), torch.cat(pix_l)
    lab, img, reg = torch.cat(pix_lab), torch.cat(pix_img), torch.cat(pix_reg)
    S = offset
    proto = F.normalize(torch.zeros(S, D, dtype=e.dtype, device=e.device).index_add(0, pixel_segment, e), dim=1)
    proto_loc = F.normalize(torch.zeros(S, D + 2, dtype=e.dtype, device=e.device).index_add(0, pixel_segment, loc), dim=1)
    first = torch.full((S,), len(pixel_segment), dtype=torch.long, device=e.device)
    first = first.scatter_reduce(0, pixel_segment, torch.arange(len(pixel_segment), device=e.device), "amin")
    segs = Segments(pixel_segment, lab, img, reg, proto, proto_loc, lab[first], reg[first], img[first],
                    tags[img[first]].float(), labels != IGNORE)
    return segs, e, loc


def segsort_loss(anchors: torch.Tensor, own: torch.Tensor, positive: torch.Tensor, prototypes: torch.Tensor,
                 kappa: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The pixel-to-segment loss (module docstring), averaged over anchors.

    ``anchors`` (N, D) unit; ``own`` (N,) each anchor's own segment (an index into ``prototypes``,
    or -1 when its segment is not among them); ``positive`` (N, S) bool; ``prototypes`` (S, D) unit;
    ``valid`` (N, S) bool, the prototypes that count for each anchor at all (default: all). The own
    segment is left out of numerator and denominator when another positive exists, and is the
    positive when none does.
    """
    logits = kappa * anchors @ prototypes.t()                      # (N, S)
    valid = torch.ones_like(positive) if valid is None else valid
    is_own = torch.zeros_like(positive)
    has_own = own >= 0
    is_own[has_own.nonzero().flatten(), own[has_own]] = True
    others = positive & ~is_own & valid
    fallback = ~others.any(1)                                      # no other positive: the own segment is it
    pos = torch.where(fallback[:, None], is_own & valid, others)
    neg = ~positive & valid
    usable = pos.any(1)
    if not usable.any():
        return anchors.sum() * 0.0
    m = logits.masked_fill(~(pos | neg), float("-inf"))
    num = torch.logsumexp(logits.masked_fill(~pos, float("-inf")), 1)
    den = torch.logsumexp(m, 1)
    return (den - num)[usable].mean()


# --- the relations ---------------------------------------------------------------------------------

def annotation_positives(anchor_label: torch.Tensor, proto_label: torch.Tensor) -> torch.Tensor:
    """(N, S) bool: prototype ``p`` is a positive of anchor ``i`` when both carry the same class."""
    return anchor_label[:, None] == proto_label[None, :]


def cooccurrence_positives(anchor_tags: torch.Tensor, proto_tags: torch.Tensor) -> torch.Tensor:
    """(N, S) bool: the anchor's image and the segment's image share at least one tag."""
    return (anchor_tags.float() @ proto_tags.float().t()) > 0


def similarity_positives(anchor_region: torch.Tensor, proto_region: torch.Tensor) -> torch.Tensor:
    """(N, S) bool: same low-level region (anchors and prototypes of one image)."""
    return anchor_region[:, None] == proto_region[None, :]


class SPMLLoss:
    """The SPML objective over a batch of embeddings, with a memory of earlier batches' prototypes.

    ``num_classes``: C (background is class 0); labels ``< C`` are annotations. Weights and
    concentrations per relation (``weights``, ``kappas``: dicts with keys ``similarity``,
    ``annotation``, ``cooccurrence``); ``grid``, ``iterations``: the k-means; ``memory``: how many
    earlier batches' prototypes the annotation and co-occurrence terms also compare with.

    Calling it returns ``{"loss", "similarity", "annotation", "cooccurrence", "segments"}``. The
    memory lives in the object; :meth:`state_dict` / :meth:`load_state_dict` carry it through a
    training checkpoint, so a resumed training repeats an uninterrupted one.
    """

    def __init__(self, num_classes: int, weights: dict, kappas: dict, grid: int = 3, iterations: int = 10,
                 memory: int = 2) -> None:
        for d, name in ((weights, "weights"), (kappas, "kappas")):
            if set(d) != {"similarity", "annotation", "cooccurrence"}:
                raise ValueError(f"SPMLLoss {name} must give similarity, annotation and cooccurrence, got {sorted(d)}")
        self.num_classes, self.weights, self.kappas = num_classes, dict(weights), dict(kappas)
        self.grid, self.iterations, self.memory_size = grid, iterations, memory
        self.memory: list[dict[str, torch.Tensor]] = []

    def _bank(self, segs: Segments) -> dict[str, torch.Tensor]:
        """The current batch's segments first (so a pixel's own segment index is valid in the bank),
        then the memory's."""
        past = self.memory
        cat = lambda k, now: torch.cat([now] + [m[k].to(now.device) for m in past]) if past else now  # noqa: E731
        return {"prototype": cat("prototype", segs.prototype), "label": cat("label", segs.label),
                "tags": cat("tags", segs.tags)}

    def state_dict(self) -> dict:
        return {"memory": [{k: v.detach().cpu() for k, v in m.items()} for m in self.memory]}

    def load_state_dict(self, state: dict) -> None:
        self.memory = [dict(m) for m in state["memory"]]

    def __call__(self, embedding: torch.Tensor, labels: torch.Tensor, regions: torch.Tensor,
                 tags: torch.Tensor) -> dict:
        e = F.normalize(embedding, dim=1)
        segs, pe, ploc = segment(e, labels, regions, tags, self.grid, self.iterations)
        zero = pe.sum() * 0.0
        # low-level similarity: per image, embedding with position, no memory
        sims = []
        for b in range(len(embedding)):
            pix = segs.pixel_image == b
            mine = (segs.image == b).nonzero().flatten()
            if pix.sum() == 0 or len(mine) == 0:
                continue
            local = torch.full((len(segs.image),), -1, dtype=torch.long, device=pe.device)
            local[mine] = torch.arange(len(mine), device=pe.device)
            sims.append(segsort_loss(ploc[pix], local[segs.pixel_segment[pix]],
                                     similarity_positives(segs.pixel_region[pix], segs.region[mine]),
                                     segs.prototype_loc[mine], self.kappas["similarity"]))
        similarity = torch.stack(sims).mean() if sims else zero
        bank = self._bank(segs)
        # semantic annotation: labelled anchors, labelled prototypes (batch + memory)
        labelled = segs.pixel_label < self.num_classes
        proto_labelled = bank["label"] < self.num_classes
        if labelled.any() and proto_labelled.any():
            keep = proto_labelled.nonzero().flatten()
            remap = torch.full((len(bank["label"]),), -1, dtype=torch.long, device=pe.device)
            remap[keep] = torch.arange(len(keep), device=pe.device)
            annotation = segsort_loss(pe[labelled], remap[segs.pixel_segment[labelled]],
                                      annotation_positives(segs.pixel_label[labelled], bank["label"][keep]),
                                      bank["prototype"][keep], self.kappas["annotation"])
        else:
            annotation = zero
        # co-occurrence: every anchor, every prototype (batch + memory), positives share a tag
        anchor_tags = tags.float()[segs.pixel_image]
        cooccurrence = segsort_loss(pe, segs.pixel_segment, cooccurrence_positives(anchor_tags, bank["tags"]),
                                    bank["prototype"], self.kappas["cooccurrence"])
        loss = (self.weights["similarity"] * similarity + self.weights["annotation"] * annotation
                + self.weights["cooccurrence"] * cooccurrence)
        self.memory = ([{"prototype": segs.prototype.detach(), "label": segs.label.detach(),
                         "tags": segs.tags.detach()}] + self.memory)[: self.memory_size]
        return {"loss": loss, "similarity": similarity, "annotation": annotation, "cooccurrence": cooccurrence,
                "segments": segs}


#: The released VOC settings per label kind (weights and concentrations of the annotation,
#: co-occurrence and low-level similarity terms; twke18/SPML's training scripts).
RELEASED = {
    "tags": {"weights": {"annotation": 0.3, "cooccurrence": 0.3, "similarity": 0.1},
             "kappas": {"annotation": 6, "cooccurrence": 8, "similarity": 16}},
    "boxes": {"weights": {"annotation": 0.3, "cooccurrence": 0.3, "similarity": 0.1},
              "kappas": {"annotation": 6, "cooccurrence": 8, "similarity": 16}},
    "points": {"weights": {"annotation": 0.1, "cooccurrence": 0.1, "similarity": 0.1},
               "kappas": {"annotation": 6, "cooccurrence": 8, "similarity": 16}},
    "scribbles": {"weights": {"annotation": 1.0, "cooccurrence": 0.5, "similarity": 0.1},
                  "kappas": {"annotation": 6, "cooccurrence": 12, "similarity": 16}},
}


# --- training ------------------------------------------------------------------------------------

def cell_labels(labels: torch.Tensor, size: tuple[int, int], num_classes: int) -> torch.Tensor:
    """Labels (B, H, W) at a coarser grid ``size``: each cell takes the most frequent label among its
    labelled pixels (a thin scribble survives the stride, which nearest-neighbour sampling would
    lose), :data:`UNLABELLED` when none is labelled, :data:`IGNORE` when all are padding."""
    B, H, W = labels.shape
    onehot = torch.zeros(B, num_classes + 2, H, W, device=labels.device)
    idx = torch.where(labels < num_classes, labels, torch.where(labels == IGNORE, num_classes + 1, num_classes))
    onehot.scatter_(1, idx[:, None], 1.0)
    counts = F.adaptive_avg_pool2d(onehot, size)                   # (B, C + 2, h, w) shares
    labelled = counts[:, :num_classes]
    out = labelled.argmax(1)
    out = torch.where(labelled.sum(1) > 0, out, torch.full_like(out, UNLABELLED))
    return torch.where(counts[:, num_classes + 1] >= 1.0 - 1e-6, torch.full_like(out, IGNORE), out)


def cell_regions(regions: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Region ids (B, H, W) at a coarser grid: the region at each cell's centre pixel."""
    H, W = regions.shape[-2:]
    h, w = size
    rows = ((torch.arange(h) + 0.5) * H / h).long().clamp(max=H - 1)
    cols = ((torch.arange(w) + 0.5) * W / w).long().clamp(max=W - 1)
    return regions[:, rows][:, :, cols]


class SPMLObjective:
    """:class:`SPMLLoss` as a training objective of :func:`~s2d_core.train.loops.fit`: batches with
    ``image`` (B, 3, H, W), ``mask`` (B, H, W) label maps in the convention of
    :mod:`s2d_core.data.labels`, ``regions`` (B, H, W) and ``tags`` (B, C); the maps are brought to
    the embedding's grid by :func:`cell_labels` and :func:`cell_regions`."""

    name = "spml"
    version = 1
    needs = ("mask", "regions", "tags")

    def __init__(self, num_classes: int, weights: dict, kappas: dict, grid: int = 3, iterations: int = 10,
                 memory: int = 2) -> None:
        self.loss = SPMLLoss(num_classes, weights, kappas, grid, iterations, memory)
        self.settings = {"weights": dict(weights), "kappas": dict(kappas), "grid": grid, "iterations": iterations,
                         "memory": memory}

    def config(self) -> dict:
        return dict(self.settings)

    def identity(self) -> dict:
        return {"name": self.name, "version": self.version, "config": self.config()}

    def state_dict(self) -> dict:
        return self.loss.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loss.load_state_dict(state)

    def check_batch(self, batch: dict) -> None:
        missing = [k for k in ("image", *self.needs) if k not in batch]
        if missing:
            raise ValueError(f"objective {self.name!r} needs {missing} in every batch; the batch has {sorted(batch)}")

    def __call__(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        emb = model(batch["image"])
        size = tuple(emb.shape[-2:])
        labels = cell_labels(batch["mask"], size, self.loss.num_classes)
        regions = cell_regions(batch["regions"], size)
        return self.loss(emb, labels, regions, batch["tags"])["loss"]


# --- read-out --------------------------------------------------------------------------------------

@torch.no_grad()
def cluster_image(embedding: torch.Tensor, grid: int, iterations: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments of one image for the read-out: spherical k-means of the unit embedding (D, h, w) with
    position from a ``grid x grid`` start. Returns ``(segment id per cell (h, w), prototypes (S, D))``
    with ids renumbered 0..S-1."""
    D, h, w = embedding.shape
    e = F.normalize(embedding, dim=0).permute(1, 2, 0).reshape(-1, D)
    loc = F.normalize(torch.cat([e, position_features(h, w, e.device).permute(1, 2, 0).reshape(-1, 2)], 1), dim=1)
    cluster = spherical_kmeans(loc, grid_init(h, w, grid, e.device).flatten(), iterations)
    _, ids = torch.unique(cluster, return_inverse=True)
    protos = F.normalize(torch.zeros(int(ids.max()) + 1, D, device=e.device).index_add_(0, ids, e), dim=1)
    return ids.view(h, w), protos


@torch.no_grad()
def build_memory(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, grid: int = 6,
                 iterations: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """A memory of labelled segment prototypes from images with (pseudo) labels: each image
    (embeddings (N, D, h, w), labels (N, h, w)) is clustered without the labels, and a segment takes
    the majority class of its labelled cells (segments without any are dropped). Returns
    ``(prototypes (M, D), labels (M,))``."""
    protos, labs = [], []
    for e, lab in zip(embeddings, labels):
        ids, p = cluster_image(e, grid, iterations)
        for s in range(len(p)):
            cells = lab[ids == s]
            cells = cells[cells < num_classes]
            if len(cells):
                protos.append(p[s])
                labs.append(torch.bincount(cells, minlength=num_classes).argmax())
    if not protos:
        raise ValueError("build_memory: no segment has a labelled cell")
    return torch.stack(protos), torch.stack(labs)


@torch.no_grad()
def segment_retrieval(embedding: torch.Tensor, memory: torch.Tensor, memory_labels: torch.Tensor, num_classes: int,
                      k: int = 20, grid: int = 6, iterations: int = 10,
                      allowed: torch.Tensor | None = None) -> torch.Tensor:
    """SPML's retrieval read-out of one image (D, h, w): its segments vote with their ``k`` nearest
    memory prototypes (cosine), unweighted; every cell takes its segment's majority class among the
    ``allowed`` ones ((C,) bool, e.g. background and the image's tags; all when None). (h, w) int64."""
    ids, protos = cluster_image(embedding, grid, iterations)
    k = min(k, len(memory))
    nearest = (protos @ memory.t()).topk(k, dim=1).indices                      # (S, k)
    votes = torch.zeros(len(protos), num_classes, device=protos.device)
    votes.scatter_add_(1, memory_labels[nearest], torch.ones_like(nearest, dtype=votes.dtype))
    if allowed is not None:  # ties and all-zero rows go to the first allowed class (background)
        votes = votes.masked_fill(~allowed.to(votes.device)[None], -1.0)
    return votes.argmax(1)[ids]


@torch.no_grad()
def random_walk(embedding: torch.Tensor, scores: torch.Tensor, beta: float = 100.0, steps: int = 64) -> torch.Tensor:
    """Propagate class scores over the embedding's affinity (SPML's pseudo-label step).

    .. math::  A_{ij} = \\exp\\big(\\beta(\\langle e_i, e_j\\rangle - 1)\\big),\\quad
               T = A D^{-1}\\ \\text{(columns sum to 1)},\\quad s' = s\\, T^{\\text{steps}}

    ``embedding`` (D, h, w); ``scores`` (C, h, w) non-negative; ``steps`` a power of two (the walk
    squares T). Each cell's new score is an average of the old ones weighted by affinity (columns of
    T sum to 1), so scores spread within groups of similar cells and never exceed their maximum.
    Returns (C, h, w).
    """
    D, h, w = embedding.shape
    if steps < 1 or steps & (steps - 1):
        raise ValueError(f"steps must be a power of two, got {steps}")
    e = F.normalize(embedding.reshape(D, -1), dim=0)
    a = torch.exp(beta * (e.t() @ e - 1.0))
    t = a / a.sum(0, keepdim=True)
    for _ in range(int(steps).bit_length() - 1):
        t = t @ t
    return (scores.reshape(scores.shape[0], -1) @ t).reshape(scores.shape)


def fit_classifier(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int = 10,
                   batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = True) -> EmbeddingClassifier:
    r"""SPML's softmax classifier, trained on frozen embeddings.

    .. math::  \min_\theta \; \frac{1}{|L|}\sum_{i \in L} -\log \operatorname{softmax}(f_\theta(e))_{i, y_i}

    over the labelled pixels :math:`L` (the logits are upsampled to the label map, as the release
    does, so a single clicked pixel counts). ``embeddings`` (N, D, h, w); ``labels`` (N, H, W) int with
    values >= ``num_classes`` (``UNLABELLED``, ``IGNORE``) left out. Adam, ``epochs`` passes in a
    seeded order (the global RNG is left as it was). The release trains this head beside the
    embedding on detached embeddings; here it sees the embedding's final state only, which is the
    state its scores are read from. Returns the head in eval mode, on ``device``.
    """
    if embeddings.ndim != 4 or labels.ndim != 3 or len(embeddings) != len(labels):
        raise ValueError(f"fit_classifier: embeddings (N, D, h, w) and labels (N, H, W) of the same N expected, "
                         f"got {tuple(embeddings.shape)} and {tuple(labels.shape)}")
    target = labels.long().masked_fill(labels >= num_classes, -100)
    if not (target >= 0).any():
        raise ValueError("fit_classifier: no labelled pixel (every label is >= num_classes)")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the head's initial weights and its dropout
        head = EmbeddingClassifier(embeddings.shape[1], num_classes).to(device)
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        head.train()
        for _ in progress_bar(range(epochs), desc="SPML classifier", disable=not progress):
            for idx in torch.randperm(len(embeddings), generator=g).split(batch_size):
                t = target[idx].to(device)
                if not (t >= 0).any():
                    continue
                logits = F.interpolate(head(embeddings[idx].to(device)), size=labels.shape[-2:], mode="bilinear",
                                       align_corners=False)
                opt.zero_grad()
                F.cross_entropy(logits, t, ignore_index=-100).backward()
                opt.step()
    return head.eval()


@torch.no_grad()
def propagate_labels(embedding: torch.Tensor, probs: torch.Tensor, image: torch.Tensor, allowed: torch.Tensor,
                     crf: CRFConfig | None = CRFConfig(), beta: float = 100.0, steps: int = 64) -> np.ndarray:
    r"""SPML's pseudo labels of one image: class scores propagated by a random walk on the embedding's
    affinity, then a dense CRF.

    .. math::  s_c = \frac{p_c}{\max_i p_{c,i}}\,[c \in \text{allowed}],\qquad
               s' = s\,T^{\text{steps}}\ (:func:`random_walk`),\qquad
               y = \arg\max_c \operatorname{CRF}\big(I, \operatorname{up}(s') / \textstyle\sum_c \operatorname{up}(s')_c\big)

    ``embedding`` (D, h, w); ``probs`` (C, h, w) the classifier's softmax; ``image`` (3, H, W) in
    [0, 1]; ``allowed`` (C,) bool (we allow background and the image's tags; the release takes the
    classes present in the image's annotation). The walk runs on the embedding's device. Each class is scaled to its own
    peak before the walk, so a class the classifier is unsure of everywhere can still win where it is
    strongest (the release's normalisation). ``crf=None`` skips the CRF. Returns (H, W) int64 labels.
    """
    C = probs.shape[0]
    if probs.ndim != 3 or probs.shape[1:] != embedding.shape[1:] or allowed.shape != (C,):
        raise ValueError(f"propagate_labels: probs (C, h, w) on the embedding's grid {tuple(embedding.shape[1:])} and "
                         f"allowed (C,) expected, got {tuple(probs.shape)} and {tuple(allowed.shape)}")
    probs = probs.to(embedding.device)
    s = probs / probs.flatten(1).amax(1).clamp_min(1e-8)[:, None, None]
    s = s * allowed.to(s)[:, None, None]
    s = random_walk(embedding, s, beta, steps)
    s = F.interpolate(s[None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0].clamp_min(0).cpu()
    if crf is None:
        return s.argmax(0).numpy()
    p = (s + 1e-6 * allowed.to(s)[:, None, None]) / (s.sum(0, keepdim=True) + 1e-6 * allowed.sum())
    q = crf_probs(image, p.numpy(), crf)
    return q.argmax(0).astype(np.int64)
