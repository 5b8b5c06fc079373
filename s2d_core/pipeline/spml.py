"""One learner for every label: SPML and its baselines on the synthetic world, stage by stage.

    run = SPMLRun(kind="scribbles", method="spml", preset="cpu", seed=0)
    run.train()          # SPML: the embedding network (cached); baselines: nothing to do here
    run.pseudo_labels()  # SPML: classifier scores -> random walk -> dense CRF on the training images
    run.final()          # the segmentation network on the labels (the same for every method), val mIoU

SPML's pseudo labels are read from the embedding as the released code does (``readout="random_walk_crf"``):
a softmax classifier on the frozen embedding, trained on the labelled pixels, gives class scores; each
class is scaled to its peak, classes outside background and the image's tags are zeroed, the scores
are propagated by a random walk on the embedding affinity and refined by the pipeline's dense CRF
(:func:`~s2d_core.train.spml.propagate_labels`). The second view, ``readout="retrieval"``, is the
paper's segment retrieval: the embedding is clustered (a ``readout_grid`` start), and each segment
takes the majority class of its ``k`` nearest labelled segments of all training images (the memory),
among background and the image's tags. From tags, the labels are
the tag classifier's CAM with a band around its best threshold, chosen on the training images' ground
truth as the book's CAM baselines are (:func:`tag_labels`); from boxes, the box class's CAM inside
each box (:func:`box_cam_labels`).

Methods: ``spml``; ``partial_ce`` (the segmentation network on the labelled pixels only: points,
scribbles); ``box_fill`` (the filled boxes as labels); ``box_crf`` (the filled boxes refined by the
read-out's dense CRF inside the boxes, the simplest of the box-driven family: :func:`box_crf_labels`); ``full`` (dense masks: the upper bound). Every
method ends with the same segmentation network, initialisation and schedule
(:func:`~s2d_core.pipeline.artifacts.get_segmenter`), so the final mIoU compares labels, not networks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .. import cache
from ..configbase import Config, at_least, check, one_of, positive
from ..data import get_dataset
from ..data.labels import UNLABELLED, box_labels, full_labels, point_labels, scribble_labels, superpixels
from ..devices import resolve_device
from ..eval.segmentation import SegmentationMeter
from ..models.config import ModelConfig
from ..models.embedding import EmbeddingNet
from ..train.config import TrainConfig
from ..train.loops import predict_masks
from ..pseudo.config import CRFConfig
from ..pseudo.crf import crf_probs
from ..pseudo.masks import pseudo_mask
from ..train.spml import RELEASED, SPMLObjective, build_memory, fit_classifier, propagate_labels, segment_retrieval
from .artifacts import RECIPES, dataset_id, get_cams, get_segmenter, train_or_load
from .config import PipelineConfig
from .presets import get_pipeline
from .pretrained import with_init
from .run import PipelineRun

__all__ = ["SPML_KINDS", "SPML_METHODS", "SPML_PARAMETERS", "SPMLConfig", "SPMLRun", "WeakLabels", "box_crf_labels",
           "get_spml_embedding",
           "box_cam_labels", "spml_config", "tag_labels", "validate_spml_params"]

SPML_KINDS = ("tags", "points", "scribbles", "boxes", "full")
SPML_METHODS = {"spml": SPML_KINDS, "partial_ce": ("points", "scribbles"), "box_fill": ("boxes",),
                "box_crf": ("boxes",), "full": ("full",)}
"""Each method and the label kinds it takes."""


READOUTS = ("random_walk_crf", "random_walk", "retrieval")
"""The read-outs of :class:`SPMLConfig` (``readout``)."""
READOUT_SETTINGS = ("readout_grid", "k", "readout", "walk_beta", "walk_steps", "classifier_epochs", "crf")
"""SPMLConfig fields that change the read-out only (not the embedding's cache key)."""


@dataclass(frozen=True)
class SPMLConfig(Config):
    """SPML's settings at our scale (64 px, stride-4 embeddings of 16 x 16 cells)."""

    embedding: ModelConfig = field(default_factory=lambda: ModelConfig(init="synthetic"))
    dim: int = 64
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=12, batch_size=16, lr=2e-3))
    grid: int = 3
    """k-means grid in training (SPML: 6 x 6 on ~64 x 64 maps; ours are 16 x 16)."""
    readout_grid: int = 4
    """k-means grid of the retrieval read-out (SPML: 12 x 12)."""
    iterations: int = 10
    memory: int = 2
    k: int = 20
    """Nearest memory segments that vote in the read-out."""
    superpixels: int = 40
    """SLIC superpixels per 64-px image (the low-level regions)."""
    background_points: int = 1
    """Background clicks per image added to the points (:func:`~s2d_core.data.labels.point_labels`)."""
    readout: str = "random_walk_crf"
    """How pseudo labels are read from the embedding: ``random_walk_crf`` (the released pipeline),
    ``random_walk`` (without the CRF) or ``retrieval`` (segment retrieval, the second view)."""
    walk_beta: float = 100.0
    """Sharpness of the walk's affinity exp(beta (<e_i, e_j> - 1)) (the release: (exp(5(.)))^20)."""
    walk_steps: int = 64
    """Steps of the random walk, a power of two (the release squares the transition 6 times)."""
    classifier_epochs: int = 10
    """Epochs of the softmax classifier on the frozen embedding (ours; seconds at 64 px)."""
    crf: CRFConfig = field(default_factory=lambda: CRFConfig(sxy_gaussian=1.0, compat_gaussian=3.0, sxy_bilateral=9.0,
                                                            srgb_bilateral=3.0, compat_bilateral=4.0))
    """The read-out's dense CRF: the released VOC settings (Gaussian xy 1, weight 3; bilateral xy 67,
    rgb 3, weight 4; 10 iterations) with the bilateral range scaled from ~500 px to our 64 px
    (67 x 64 / 500 ~ 9); the Gaussian's 1 px stays 1 px."""

    rules = {"dim": at_least(4), "grid": at_least(1), "readout_grid": at_least(1), "iterations": at_least(1),
             "memory": at_least(0), "k": at_least(1), "superpixels": at_least(2), "background_points": at_least(0),
             "readout": one_of(*READOUTS), "walk_beta": positive, "walk_steps": at_least(1),
             "classifier_epochs": at_least(1)}

    def validate(self) -> None:
        s = self.walk_steps
        check(s & (s - 1) == 0, f"SPMLConfig.walk_steps must be a power of two (the walk squares its matrix), got {s}")


READOUT_VERSION = 2
"""Version of what :meth:`SPMLRun.pseudo_labels` produces (part of the benchmark run ids)."""

#: SPML's settings per pipeline preset (``tiny``: a few seconds for the tests).
SPML_CONFIGS: dict[str, SPMLConfig] = {
    "cpu": SPMLConfig(),
    "tiny": SPMLConfig(dim=16, train=TrainConfig(epochs=1, batch_size=8), grid=2, readout_grid=2, k=5),
}


def spml_config(preset: str) -> SPMLConfig:
    """The :class:`SPMLConfig` of a pipeline preset (the ``cpu`` one for presets without their own)."""
    return SPML_CONFIGS.get(preset, SPML_CONFIGS["cpu"])


def _labels(item: dict, kind: str, cfg: SPMLConfig, seed: int) -> np.ndarray:
    if kind == "tags":
        raise ValueError("tag labels come from a CAM: build them with tag_labels() and pass them to WeakLabels")
    if kind == "points":
        return point_labels(item, cfg.background_points, seed=seed)
    if kind == "scribbles":
        return scribble_labels(item)
    if kind == "boxes":
        return box_labels(item)
    if kind == "full":
        return full_labels(item)
    raise ValueError(f"unknown label kind {kind!r}: expected one of {SPML_KINDS}")


class WeakLabels(Dataset):
    """A synthetic split with one kind of label as a dense map (``mask``, the convention of
    :mod:`s2d_core.data.labels`), its superpixels (``regions``) and ``tags``; maps are computed once."""

    fixed_size = True

    def __init__(self, base: Dataset, kind: str, cfg: SPMLConfig = SPMLConfig(), seed: int = 0,
                 labels: np.ndarray | None = None, labels_identity: dict | None = None) -> None:
        self.base, self.kind, self.cfg, self.seed = base, kind, cfg, seed
        self.num_classes = base.num_classes
        if labels is not None and labels_identity is None:
            raise ValueError("labels given without labels_identity (what made them, for the cache key)")
        self.labels_identity = labels_identity
        self.labels = np.asarray(labels) if labels is not None else \
            np.stack([_labels(base[i], kind, cfg, seed) for i in range(len(base))])
        self.regions = np.stack([superpixels(base[i]["image"].numpy().transpose(1, 2, 0), cfg.superpixels)
                                 for i in range(len(base))])

    def __len__(self) -> int:
        return len(self.base)

    def identity(self) -> dict:
        return {**dataset_id(self.base), "labels": self.kind, "label_seed": self.seed,
                "background_points": self.cfg.background_points, "superpixels": self.cfg.superpixels,
                "made_by": self.labels_identity}

    def __getitem__(self, i: int) -> dict:
        it = self.base[i]
        return {"image": it["image"], "mask": torch.from_numpy(self.labels[i]),
                "regions": torch.from_numpy(self.regions[i]), "tags": it["tags"], "index": i}


def get_spml_embedding(data: WeakLabels, cfg: SPMLConfig, pipeline: PipelineConfig, seed: int = 0,
                       device: str | torch.device = "cpu", progress: bool = True,
                       use_cache: bool = True) -> tuple[EmbeddingNet, dict]:
    """The SPML embedding network trained on ``data``'s labels with the released weights and
    concentrations of its label kind (:data:`~s2d_core.train.spml.RELEASED`), cached."""
    device = resolve_device(device)
    settings = RELEASED["boxes" if data.kind == "full" else data.kind]  # full masks: the box/tag settings
    objective = SPMLObjective(data.num_classes, **settings, grid=cfg.grid, iterations=cfg.iterations, memory=cfg.memory)
    train_cfg = cfg.train.for_init(cfg.embedding.init)
    training = {k: v for k, v in cfg.to_dict().items() if k not in READOUT_SETTINGS}  # read-out settings retrain nothing
    spec = {"data": data.identity(), "config": training, "seed": int(seed), "objective": objective.identity()}
    model_cfg, spec["init"] = with_init(cfg.embedding, pipeline.pretraining, device=device, progress=progress,
                                        use_cache=use_cache)
    key = cache.artifact_key("spml-embedding", RECIPES["spml-embedding"], spec)
    return train_or_load(f"spml-{data.kind}", key, lambda: EmbeddingNet(model_cfg, cfg.dim), data, objective,
                          train_cfg, int(seed), device, progress, use_cache, flip_keys=("mask", "regions"))


def tag_labels(preset: str, seed: int = 0, device: str | torch.device = "cpu",
               progress: bool = True) -> tuple[np.ndarray, dict]:
    """Labels from image tags, as SPML takes them: the CAM of the preset's tag classifier with a
    confidence band around its best background threshold ``t`` -- foreground where a tagged class's
    CAM exceeds ``(1 + t) / 2``, background where every tagged CAM stays below ``t / 2``, unlabelled
    in between (SPML leaves CAM pixels of probability below 0.2 unlabelled; the band is our
    equivalent for a thresholded CAM). Returns ``(labels (N, H, W), identity)``."""
    run = PipelineRun(method="cam", preset=preset, seed=seed, device=str(device), final=False, progress=progress)
    run.seeds()
    t = float(run.threshold)
    cams = get_cams(run.method, run.train_set, device=run.device, progress=progress)
    bands = (t / 2, (1 + t) / 2)
    labels = np.stack([pseudo_mask(cams[i], run.train_set[i]["tags"].numpy(), t, bands)
                       for i in range(len(run.train_set))]).astype(np.int64)
    labels[labels == 255] = UNLABELLED
    return labels, {"cam": run.method.cache_key, "threshold": t, "bands": list(bands)}


def box_cam_labels(preset: str, seed: int = 0, threshold: float = 0.5, device: str | torch.device = "cpu",
                   progress: bool = True) -> tuple[np.ndarray, dict]:
    """Labels from boxes as SPML takes them: outside every box background; inside a box, the box
    class where its CAM (of the preset's tag classifier), min-max normalised within the box, reaches
    ``threshold``, unlabelled elsewhere in the box (where boxes overlap, the smaller box is drawn last).
    Returns ``(labels (N, H, W), identity)``."""
    run = PipelineRun(method="cam", preset=preset, seed=seed, device=str(device), final=False, progress=progress)
    run.train_classifier()
    cams = get_cams(run.method, run.train_set, device=run.device, progress=progress)
    out = []
    for i in range(len(run.train_set)):
        boxes = run.train_set[i]["boxes"].numpy()
        lab = np.zeros(cams.shape[-2:], np.int64)
        order = sorted(range(len(boxes)), key=lambda k: -(boxes[k][2] - boxes[k][0] + 1) * (boxes[k][3] - boxes[k][1] + 1))
        for k in order:
            x0, y0, x1, y1, c = boxes[k]
            cam = cams[i, c - 1, y0:y1 + 1, x0:x1 + 1].astype(np.float32)
            span = float(cam.max() - cam.min())
            norm = (cam - cam.min()) / span if span > 0 else np.ones_like(cam)
            lab[y0:y1 + 1, x0:x1 + 1] = np.where(norm >= threshold, c, UNLABELLED)
        out.append(lab)
    return np.stack(out), {"cam": run.method.cache_key, "box_threshold": threshold}


def box_crf_labels(item: dict, crf: CRFConfig = CRFConfig()) -> np.ndarray:
    """The filled boxes of one image (:func:`~s2d_core.data.labels.box_labels`) refined by a dense CRF
    that may only move pixels *inside* the boxes.

    Each pixel may take background or the class of a box that contains it; the unary trusts the
    filled label with ``crf.gt_prob`` and shares the rest among the pixel's other allowed classes;
    after the CRF every pixel takes its best allowed class, so pixels outside all boxes stay
    background. ``item``: a synthetic item with ``image`` (3, H, W) and ``boxes`` (x0, y0, x1, y1,
    class). Returns (H, W) int64.
    """
    filled = box_labels(item)
    boxes = item["boxes"]
    boxes = boxes.numpy() if hasattr(boxes, "numpy") else np.asarray(boxes)
    keys = np.unique(np.concatenate([[0], boxes[:, 4]])).astype(np.int64) if len(boxes) else np.zeros(1, np.int64)
    if len(keys) == 1:
        return filled
    allowed = np.zeros((len(keys), *filled.shape), bool)
    allowed[0] = True
    for x0, y0, x1, y1, c in boxes:
        allowed[np.searchsorted(keys, c), y0:y1 + 1, x0:x1 + 1] = True
    own = keys[:, None, None] == filled[None]
    others = np.maximum(allowed.sum(0) - 1, 1)
    probs = np.where(own, crf.gt_prob, np.where(allowed, (1 - crf.gt_prob) / others, 0.0))
    probs = probs / probs.sum(0, keepdims=True)  # a pixel with one allowed class: certain
    q = crf_probs(item["image"], probs, crf)
    return keys[np.where(allowed, q, -np.inf).argmax(0)]


SPML_PARAMETERS: dict[str, Any] = {"preset": "cpu", "kind": "scribbles", "method": "spml", "seed": 0, "device": "cpu"}
"""Parameters of an SPML benchmark run, with their defaults."""


def validate_spml_params(params: dict) -> None:
    """Raise ``ValueError`` naming the parameter that cannot run."""
    unknown = set(params) - set(SPML_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown SPML parameter(s) {sorted(unknown)}; expected some of {sorted(SPML_PARAMETERS)}")
    p = {**SPML_PARAMETERS, **params}
    if p["method"] not in SPML_METHODS:
        raise ValueError(f"unknown method {p['method']!r}: expected one of {sorted(SPML_METHODS)}")
    if p["kind"] not in SPML_METHODS[p["method"]]:
        raise ValueError(f"method {p['method']!r} takes {SPML_METHODS[p['method']]} labels, not {p['kind']!r}")
    get_pipeline(p["preset"])  # "unknown preset ..."
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {p['seed']!r}")
    resolve_device(p["device"])


class SPMLRun:
    """One run (module docstring). Attributes: ``labels`` (N, H, W), ``pseudo`` (N, H, W) uint8 with 255
    ignored, ``metrics``, ``seconds``."""

    def __init__(self, kind: str = "scribbles", method: str = "spml", preset: str = "cpu", seed: int = 0,
                 device: str = "cpu", cfg: SPMLConfig | None = None, progress: bool = True) -> None:
        validate_spml_params({"kind": kind, "method": method, "preset": preset, "seed": seed, "device": device})
        self.params = {"preset": preset, "kind": kind, "method": method, "seed": int(seed), "device": device}
        cfg = spml_config(preset) if cfg is None else cfg
        self.kind, self.method, self.seed, self.cfg, self.progress = kind, method, int(seed), cfg, progress
        self.pipeline = get_pipeline(preset)
        self.device = resolve_device(device)
        self.train_set = get_dataset("synthetic", "train", preset, progress=progress)
        self.val_set = get_dataset("synthetic", "val", preset, progress=progress)
        if kind == "tags" or (kind == "boxes" and method == "spml"):
            make = tag_labels if kind == "tags" else box_cam_labels
            labels, made_by = make(preset, self.seed, device=self.device, progress=progress)
            self.data = WeakLabels(self.train_set, kind, cfg, self.seed, labels, made_by)
        elif method == "box_crf":  # the same dense CRF as SPML's read-out
            crf = cfg.crf
            labels = np.stack([box_crf_labels(self.train_set[i], crf) for i in range(len(self.train_set))])
            self.data = WeakLabels(self.train_set, kind, cfg, self.seed, labels, {"box_crf": crf.to_dict()})
        else:
            self.data = WeakLabels(self.train_set, kind, cfg, self.seed)
        self.model = None
        self.pseudo: np.ndarray | None = None
        self.metrics: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}

    def train(self) -> dict:
        if self.method != "spml":
            return {}
        self.model, info = get_spml_embedding(self.data, self.cfg, self.pipeline, self.seed, self.device, self.progress)
        self.seconds["embedding"] = info["seconds"]
        return info

    def pseudo_labels(self) -> np.ndarray:
        """The labels the final network trains on: SPML's read-out (``cfg.readout``), or the labels themselves."""
        t0 = time.perf_counter()
        labels = self.data.labels
        if self.method == "spml":
            if self.model is None:
                self.train()
            self.model.eval()
            n = len(self.data)
            with torch.no_grad():
                embs = torch.cat([self.model(torch.stack([self.data[j]["image"] for j in range(i, min(i + 64, n))])
                                             .to(self.device)).cpu() for i in range(0, n, 64)])
            allowed = torch.zeros(n, self.data.num_classes, dtype=torch.bool)
            allowed[:, 0] = True  # background, and the classes the image is tagged with
            for i in range(n):
                allowed[i, 1:] = self.train_set[i]["tags"] > 0
            full = torch.from_numpy(labels)
            if self.cfg.readout == "retrieval":
                pseudo = self._retrieval(embs, full, allowed)
            else:
                crf = self.cfg.crf if self.cfg.readout == "random_walk_crf" else None
                head = fit_classifier(embs, full, self.data.num_classes, self.cfg.classifier_epochs, seed=self.seed,
                                      device=self.device, progress=self.progress)
                with torch.no_grad():
                    probs = torch.cat([head(embs[i:i + 256].to(self.device)).softmax(1).cpu() for i in range(0, n, 256)])
                pseudo = np.stack([propagate_labels(embs[i].to(self.device), probs[i], self.data[i]["image"], allowed[i],
                                                    crf, self.cfg.walk_beta, self.cfg.walk_steps) for i in range(n)])
        else:
            pseudo = labels
        self.pseudo = np.where(pseudo >= UNLABELLED, 255, pseudo).astype(np.uint8)
        meter = SegmentationMeter(self.train_set.num_classes)
        for i, m in enumerate(self.pseudo):
            meter.update(m.astype(np.int64), self.train_set[i]["mask"], pred_ignore=255)
        self.metrics.update(label_miou=meter.compute()["miou"], labelled_share=float((self.pseudo != 255).mean()))
        self.seconds["pseudo_labels"] = time.perf_counter() - t0
        return self.pseudo

    @torch.no_grad()
    def _retrieval(self, embs: torch.Tensor, labels: torch.Tensor, allowed: torch.Tensor) -> np.ndarray:
        """Segment retrieval: the embedding brought to the image's size, clustered; segments vote with
        their nearest labelled memory segments."""
        size = labels.shape[-2:]
        embs = torch.cat([F.normalize(F.interpolate(embs[i:i + 64], size=size, mode="bilinear", align_corners=False), dim=1)
                          for i in range(0, len(embs), 64)])
        memory, mem_labels = build_memory(embs, labels, self.data.num_classes, self.cfg.readout_grid, self.cfg.iterations)
        return np.stack([segment_retrieval(e, memory, mem_labels, self.data.num_classes, self.cfg.k, self.cfg.readout_grid,
                                           self.cfg.iterations, allowed[i]).numpy() for i, e in enumerate(embs)])

    def final(self) -> dict:
        """The segmentation network on the labels, its val mIoU, and the fully supervised bound's."""
        if self.pseudo is None:
            self.pseudo_labels()
        p = self.pipeline
        masks = None if self.method == "full" else self.pseudo
        seg, info = get_segmenter(self.train_set, masks, p.segmenter, p.segmenter_train, seed=self.seed,
                                  device=self.device, progress=self.progress, pretraining=p.pretraining)
        self.seconds["segmenter"] = info["seconds"]
        meter = SegmentationMeter(self.val_set.num_classes)
        for pred, i in zip(predict_masks(seg, self.val_set, device=self.device, progress=False), range(len(self.val_set))):
            meter.update(pred.astype(np.int64), self.val_set[i]["mask"])
        self.metrics["final_miou"] = meter.compute()["miou"]
        return self.metrics

    def run(self) -> dict:
        self.train()
        self.pseudo_labels()
        self.final()
        return self.record()

    def record(self, run_id: str | None = None, suite: str | None = None) -> dict:
        """Everything measured, JSON-able."""
        return {"run_id": run_id, "suite": suite, "params": dict(self.params), "config": self.cfg.to_dict(),
                "data": self.data.identity(), "metrics": dict(self.metrics), "seconds": dict(self.seconds),
                "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                                "device": str(self.device)},
                "date": time.strftime("%Y-%m-%d %H:%M")}
