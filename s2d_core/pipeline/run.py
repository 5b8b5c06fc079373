"""The CAM pipeline, stage by stage: what one benchmark run (and a reader) executes.

    run = PipelineRun(method="mutual_calibration", preset="cpu", seed=0)
    run.train_classifier()   # the method's classifier (tags only), cached
    run.seeds()              # its maps on the training set; seed mIoU at the best background threshold
    run.pseudo_masks()       # maps -> pseudo masks (threshold, optional CRF, or an enhancer such as C6)
    run.train_segmenters()   # a segmentation network on the pseudo masks, and one on ground truth
    record = run.record()    # metrics, stage timings, configuration, environment (JSON-able)

The parameters (:data:`PARAMETERS`) are the benchmark runner's: a run is named by them, and
:func:`validate_params` rejects a set that cannot run with a message that says why, before
anything is trained. Real data (``dataset="voc"``) follows the field's protocol: classifier and
segmenter on ``train_aug``, seeds on ``train``, evaluation on ``val``, images one at a time.
"""

from __future__ import annotations

import itertools
import json
import platform
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import timm
import torch

from ..cam.base import METHODS
from ..data import fixed_size, get_dataset
from ..data.presets import PRESETS
from ..devices import resolve_device
from ..models.config import INITS
from ..eval.seeds import sweep_thresholds
from ..eval.segmentation import SegmentationMeter
from ..pseudo.config import SEGMENTERS
from ..pseudo.enhancers import ENHANCERS
from ..pseudo.masks import IGNORE, label_coverage, pseudo_mask
from ..train.loops import predict_masks
from .artifacts import dataset_id, get_cams, get_segmenter
from .config import PipelineConfig
from .methods import build_method, make_predictor
from .presets import PIPELINES, get_pipeline

__all__ = ["INIT_BEFORE", "LATER_PARAMETERS", "PARAMETERS", "PipelineRun", "resolved_init", "run_config",
           "validate_params"]

#: Parameters of a run, with their defaults (the benchmark runner's parameters).
PARAMETERS: dict[str, Any] = {
    "preset": "cpu",          # synthetic preset and pipeline preset (s2d_core.presets)
    "dataset": "synthetic",   # "synthetic" or "voc"
    "dataset_root": None,     # folder of VOC2012 when dataset == "voc"
    "method": "cam",          # a registered map method (s2d_core.pipeline.list_methods(); aliases work)
    "refine": "none",         # "none" or "crf" (IRN-style dense CRF on the pseudo masks)
    "backbone": None,         # timm backbone for classifier and segmenter; None = the preset's
    "init": None,             # where every network's weights start: scratch, synthetic, imagenet; None = the preset's
    "seed": 0,
    "device": "cpu",          # "cpu", "cuda", "cuda:N", "mps" or "auto"
    "overrides": {},          # PipelineConfig fields to change, e.g. {"classifier_train": {"epochs": 1}}
    "c6": "none",             # an enhancer on top of the method's maps (list_enhancers(); "spectral" = C6)
    "c6_segmenter": "tiny_sam",  # who answers the prompts: tiny_sam, random_walker, sam (needs sam_checkpoint)
    "sam_checkpoint": None,   # path of a real SAM checkpoint (sam_vit_b_01ec64.pth, ...) for c6_segmenter="sam"
    "final": True,            # train and evaluate the segmentation networks (False: stop after the pseudo masks)
}
#: Parameters added after records existed: a record lists them (and a run id hashes them) only
#: when they differ from their default, so earlier records keep describing their runs.
LATER_PARAMETERS = ("c6", "c6_segmenter", "sam_checkpoint", "final", "init")
#: How every network started before ``init`` existed: records that do not list it were made so.
INIT_BEFORE = "scratch"


def validate_params(params: dict) -> None:
    """Raise ``ValueError`` with a clear message for a parameter set that cannot run."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; expected some of {sorted(PARAMETERS)}")
    p = {**PARAMETERS, **params}
    METHODS.canonical(p["method"])  # "unknown method ...: expected one of ..."
    if p["refine"] not in ("none", "crf"):
        raise ValueError(f"refine must be 'none' or 'crf', got {p['refine']!r}")
    if p["preset"] not in PIPELINES:
        raise ValueError(f"unknown preset {p['preset']!r}: expected one of {sorted(PIPELINES)}")
    if p["dataset"] not in ("synthetic", "voc"):
        raise ValueError(f"dataset must be 'synthetic' or 'voc', got {p['dataset']!r}")
    if p["dataset"] == "voc":
        if not p["dataset_root"]:
            raise ValueError("dataset='voc' needs dataset_root=<folder with VOC2012 or VOCdevkit/VOC2012>")
        if not Path(p["dataset_root"]).expanduser().exists():
            raise ValueError(f"dataset_root {p['dataset_root']!r} does not exist")
    else:
        if p["dataset_root"] is not None:
            raise ValueError("dataset_root is only used with dataset='voc'")
        if p["preset"] not in PRESETS:
            raise ValueError(f"preset {p['preset']!r} has no synthetic data; with dataset='synthetic' use one of "
                             f"{sorted(PRESETS)}")
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {p['seed']!r}")
    if p["c6"] != "none":
        ENHANCERS.canonical(p["c6"])  # "unknown enhancer ...: expected one of ..."
    if p["c6_segmenter"] not in SEGMENTERS:
        raise ValueError(f"c6_segmenter must be one of {SEGMENTERS}, got {p['c6_segmenter']!r}")
    if p["c6"] == "none" and (p["c6_segmenter"] != PARAMETERS["c6_segmenter"] or p["sam_checkpoint"] is not None):
        raise ValueError("c6_segmenter and sam_checkpoint only apply with c6 set to a prompt strategy (c6='none' here)")
    if p["c6"] != "none" and p["refine"] != "none":
        raise ValueError(f"refine={p['refine']!r} does not apply to C6 pseudo masks (the segmenter draws the "
                         f"boundaries); use refine='none' with c6={p['c6']!r}")
    if p["c6_segmenter"] == "sam":
        if not p["sam_checkpoint"]:
            raise ValueError("c6_segmenter='sam' needs sam_checkpoint=<path to sam_vit_b_01ec64.pth or similar>")
        if not Path(p["sam_checkpoint"]).expanduser().is_file():
            raise ValueError(f"sam_checkpoint {p['sam_checkpoint']!r} is not a file (download it from "
                             f"https://github.com/facebookresearch/segment-anything#model-checkpoints)")
    if not isinstance(p["final"], bool):
        raise ValueError(f"final must be true or false, got {p['final']!r}")
    if p["init"] is not None and p["init"] not in INITS:
        raise ValueError(f"init must be one of {INITS} (or None for the preset's), got {p['init']!r}")
    if not isinstance(p["overrides"], dict):
        raise ValueError(f"overrides must be a mapping of PipelineConfig fields, got {p['overrides']!r}")
    resolve_device(p["device"])
    run_config(p)  # validates backbone and overrides


def _deep_merge(base, change):
    """``change`` over ``base``, recursing into mappings (so nested preset values survive)."""
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{k: _deep_merge(base.get(k), v) for k, v in change.items()}}
    return change


def run_config(params: dict) -> PipelineConfig:
    """The :class:`PipelineConfig` a parameter set asks for: the preset's, with ``backbone``,
    ``refine``, the enhancer's settings and ``overrides`` applied."""
    p = {**PARAMETERS, **params}
    d = get_pipeline(p["preset"]).to_dict()
    if p["backbone"] is not None:
        d["classifier"]["backbone"] = d["segmenter"]["backbone"] = p["backbone"]
    if p["init"] is not None:
        d["classifier"]["init"] = d["segmenter"]["init"] = p["init"]
        custom_vit = any(d["vit"].get(k) is not None for k in ("patch_size", "embed_dim", "depth", "num_heads"))
        if p["init"] == "imagenet" and custom_vit:  # ImageNet weights exist for published ViTs only
            if METHODS.get(p["method"]).classifier == "vit":
                raise ValueError(f"init='imagenet' needs a published ViT architecture; preset {p['preset']!r} builds a "
                                 f"custom one (set vit patch_size, embed_dim, depth, num_heads to None in overrides)")
        else:
            d["vit"]["init"] = p["init"]
    for k, v in p["overrides"].items():
        if k not in d:
            raise ValueError(f"overrides: unknown PipelineConfig field {k!r}; expected some of {sorted(d)}")
        d[k] = _deep_merge(d[k], v)
    # `refine` is the one switch for the CRF, so a row labelled "none" never uses one
    d["pseudo"]["crf"] = p["refine"] == "crf"
    if p["c6"] != "none":
        strategy = ENHANCERS.get(p["c6"]).strategy
        d["c6"] = {**d["c6"], "strategy": strategy, "segmenter": p["c6_segmenter"], "sam_checkpoint": p["sam_checkpoint"]}
    cfg = PipelineConfig.from_dict(d)
    if not timm.is_model(cfg.classifier.backbone):
        raise ValueError(f"unknown timm backbone {cfg.classifier.backbone!r}")
    return cfg


def resolved_init(params: dict) -> str:
    """Where the run's networks start (``init`` after the preset's defaults): ``"scratch"``,
    ``"synthetic"`` or ``"imagenet"`` when the method's classifier and the segmenter agree, else
    ``"<classifier>+<segmenter>"``. Part of every run id and record, so that a preset's change of
    initialisation alone gives new runs, not skipped ones."""
    p = {**PARAMETERS, **params}
    cfg = run_config(p)
    cls = cfg.vit.init if METHODS.get(p["method"]).classifier == "vit" else cfg.classifier.init
    seg = cfg.segmenter.init
    return cls if cls == seg or not p["final"] else f"{cls}+{seg}"


def cpu_model() -> str:
    """The processor's name: two CPUs with different vector units can round a training run
    differently (its numbers then differ in the last digits), so records name it."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), []))
    units = [u for u, flag in (("avx2", "avx2"), ("avx512", "avx512f"), ("amx", "amx_tile")) if flag in flags]
    return f"{name} ({', '.join(units)})" if units else name


class PipelineRun:
    """One run of the CAM pipeline (module docstring); each stage method returns what it measured.

    Parameters are :data:`PARAMETERS` (validated first). ``progress`` shows progress bars.
    Attributes filled by the stages: ``method``, ``sweep``, ``threshold``, ``masks``,
    ``metrics``, ``seconds`` (wall time per stage) and ``from_cache``.
    """

    def __init__(self, progress: bool = True, **params: Any) -> None:
        validate_params(params)
        self.params = {**PARAMETERS, **params}
        self.cfg = run_config(params)
        self.device = resolve_device(self.params["device"])
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}
        self.from_cache: dict[str, Any] = {}
        self.train_set, self.seed_set, self.eval_set = self._data()
        self.method = self.sweep = self.threshold = self.masks = None
        self.final_meter = None

    # --- data ------------------------------------------------------------------------------------
    def _data(self):
        p = self.params
        if p["dataset"] == "synthetic":
            train_set = get_dataset("synthetic", "train", p["preset"], progress=self.progress)
            return train_set, train_set, get_dataset("synthetic", "val", p["preset"], progress=self.progress)
        # PASCAL VOC: classifier and segmenter on train_aug, seeds on train (the field's protocol), eval on val
        root = str(Path(p["dataset_root"]).expanduser())
        return (get_dataset("voc", "train_aug", root=root), get_dataset("voc", "train", root=root),
                get_dataset("voc", "val", root=root))

    @property
    def num_classes(self) -> int:
        return self.train_set.num_classes

    def _maps(self, dataset) -> Iterator[np.ndarray]:
        """The method's maps of ``dataset`` in order: cached as one array for same-size images,
        else computed one image at a time (real images differ in size)."""
        if fixed_size(dataset):
            yield from get_cams(self.method, dataset, device=self.device, progress=self.progress)
            return
        for i in range(len(dataset)):
            item = dataset[i]
            yield self.method(item["image"][None].to(self.device), item["tags"][None].to(self.device))[0].cpu().numpy()

    # --- stages ----------------------------------------------------------------------------------
    def train_classifier(self) -> dict:
        """Stage 1: the method's classifier on image tags (from the cache when it exists)."""
        self.method, info = build_method(self.params["method"], self.train_set, self.cfg, seed=self.params["seed"],
                                         device=self.device, progress=self.progress)
        clf = info["classifier"]
        self.seconds["classifier"] = clf["seconds"]
        self.from_cache["classifier"] = clf["from_cache"]
        return clf

    def seeds(self) -> dict:
        """Stage 2: maps of the seed split, and seed mIoU swept over the background threshold."""
        if self.method is None:
            self.train_classifier()
        t0 = time.perf_counter()
        ds = self.seed_set
        if fixed_size(ds):
            cams = get_cams(self.method, ds, device=self.device, progress=self.progress)
            tags = [ds[i]["tags"].numpy() for i in range(len(ds))]
            masks = [ds[i]["mask"].numpy() for i in range(len(ds))]
            self.sweep = sweep_thresholds(cams, tags, masks, self.num_classes)
        else:  # one image at a time; zip() in sweep_thresholds advances the three tees in step
            def stream():
                for cam, i in zip(self._maps(ds), range(len(ds))):
                    item = ds[i]
                    yield cam, item["tags"].numpy(), item["mask"].numpy()
            a, b, c = itertools.tee(stream(), 3)
            self.sweep = sweep_thresholds((x[0] for x in a), (x[1] for x in b), (x[2] for x in c), self.num_classes)
        self.seconds["cams"] = time.perf_counter() - t0
        fixed = self.cfg.pseudo.threshold
        self.threshold = float(fixed if fixed is not None else self.sweep["best_threshold"])
        self.metrics.update(seed_miou=self.sweep["best_miou"], seed_threshold=self.sweep["best_threshold"],
                            pseudo_threshold=self.threshold,
                            seed_curve={"thresholds": [float(t) for t in self.sweep["thresholds"]],
                                        "miou": [float(v) for v in self.sweep["miou"]]})
        return self.sweep

    def pseudo_masks(self) -> list[np.ndarray] | np.ndarray:
        """Stage 3: the training set's pseudo masks from its maps, by the threshold (with the
        preset's bands and, with ``refine="crf"``, a dense CRF) or by an enhancer (``c6``)."""
        if self.threshold is None:
            self.seeds()
        p, cfg = self.params, self.cfg
        enhancer = predictor = feature_predictor = rng = None
        if p["c6"] != "none":
            enhancer = ENHANCERS.get(p["c6"])
            predictor, feature_predictor, sam_info = make_predictor(cfg.c6, device=self.device,
                                                                    tiny_sam_cfg=cfg.tiny_sam, progress=self.progress)
            self.seconds["promptable"] = sam_info.get("seconds", 0.0)
            rng = np.random.default_rng(p["seed"])
        t0 = time.perf_counter()  # the segmenter's pre-training is timed on its own ("promptable")
        masks = []
        crf = cfg.pseudo.crf_config if cfg.pseudo.crf else None
        for cam, i in zip(self._maps(self.train_set), range(len(self.train_set))):
            item = self.train_set[i]
            if enhancer is not None:
                masks.append(enhancer.mask(predictor, item, cam, self.threshold, cfg.c6, feature_predictor, rng))
            else:
                masks.append(pseudo_mask(cam, item["tags"].numpy(), self.threshold, cfg.pseudo.bands, item["image"], crf))
        self.masks = np.stack(masks) if fixed_size(self.train_set) else masks
        self.seconds["pseudo_masks"] = time.perf_counter() - t0
        meter = SegmentationMeter(self.num_classes)
        for i, m in enumerate(self.masks):
            meter.update(m.astype(np.int64), self.train_set[i]["mask"], pred_ignore=IGNORE)
        self.metrics.update(pseudo_miou=meter.compute()["miou"], pseudo_coverage=label_coverage(self.masks))
        return self.masks

    def evaluate(self, model: torch.nn.Module) -> SegmentationMeter:
        """mIoU of a segmentation network on the evaluation split."""
        ds = self.eval_set
        meter = SegmentationMeter(self.num_classes, class_names=getattr(ds, "class_names", None))
        for pred, i in zip(predict_masks(model, ds, device=self.device, progress=self.progress), range(len(ds))):
            meter.update(pred.astype(np.int64), ds[i]["mask"])
        return meter

    def train_segmenters(self) -> dict:
        """Stage 4: a segmentation network on the pseudo masks and the same network on ground truth
        (the upper bound), both evaluated; with ``final=False`` nothing is trained."""
        if not self.params["final"]:
            self.metrics.update(final_miou=None, fully_supervised_miou=None, final_iou=None, fully_supervised_iou=None)
            self.from_cache.update(segmenter=None, fully_supervised=None)
            return {}
        if self.masks is None:
            self.pseudo_masks()
        cfg, seed = self.cfg, self.params["seed"]
        seg, seg_info = get_segmenter(self.train_set, self.masks, cfg.segmenter, cfg.segmenter_train, seed=seed,
                                      device=self.device, progress=self.progress, pretraining=cfg.pretraining)
        self.seconds["segmenter"] = seg_info["seconds"]
        self.final_meter = self.evaluate(seg)
        full, full_info = get_segmenter(self.train_set, None, cfg.segmenter, cfg.segmenter_train, seed=seed,
                                        device=self.device, progress=self.progress, pretraining=cfg.pretraining)
        self.seconds["fully_supervised"] = full_info["seconds"]
        final, upper = self.final_meter.compute(), self.evaluate(full).compute()

        def ious(r):
            return [None if np.isnan(v) else float(v) for v in r["iou"]]
        self.metrics.update(final_miou=final["miou"], fully_supervised_miou=upper["miou"], final_iou=ious(final),
                            fully_supervised_iou=ious(upper))
        self.from_cache.update(segmenter=seg_info["from_cache"], fully_supervised=full_info["from_cache"])
        return {"final": final, "fully_supervised": upper}

    def run(self) -> dict:
        """Every stage in order; returns :meth:`record`."""
        self.train_classifier()
        self.seeds()
        self.pseudo_masks()
        self.train_segmenters()
        return self.record()

    # --- the record --------------------------------------------------------------------------------
    def record_params(self) -> dict:
        """The parameters as a record lists them: every original parameter, the later ones only
        when they differ from their default."""
        p = {**self.params, "init": resolved_init(self.params)}
        return {k: v for k, v in p.items()
                if k not in LATER_PARAMETERS or v != (INIT_BEFORE if k == "init" else PARAMETERS[k])}

    def record(self, run_id: str | None = None, suite: str | None = None) -> dict:
        """Everything measured, as a JSON-able dict (the benchmark runner writes it atomically)."""
        order = ("seed_miou", "seed_threshold", "pseudo_miou", "pseudo_coverage", "final_miou", "fully_supervised_miou",
                 "pseudo_threshold", "final_iou", "fully_supervised_iou", "seed_curve")
        return {
            "run_id": run_id, "suite": suite, "params": self.record_params(), "config": self.cfg.to_dict(),
            "data": dataset_id(self.train_set),
            "metrics": {k: self.metrics.get(k) for k in order},
            "seconds": dict(self.seconds),
            "from_cache": {k: self.from_cache.get(k) for k in ("classifier", "segmenter", "fully_supervised")},
            "environment": {"torch": torch.__version__, "python": platform.python_version(), "device": str(self.device),
                            "threads": torch.get_num_threads(), "machine": platform.machine(), "cpu": cpu_model()},
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }

    def __repr__(self) -> str:
        return f"PipelineRun({json.dumps(self.record_params(), default=str)})"
