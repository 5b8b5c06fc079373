"""The video saliency pipeline: train a baseline on a video world's clips, evaluate it as the field does.

    run = VideoRun(method="scribbles", preset="video_cpu", seed=0)
    run.train()        # the method's network (cached), from scribbles or dense masks
    run.evaluate()     # S, max F, E, MAE per sequence (ends skipped), the warping error
    record = run.record()

Methods (:data:`VIDEO_METHODS`), each the same :class:`~s2d_core.models.video_saliency.SaliencyNet`:

* ``scribbles`` -- partial BCE on the scribbled pixels + edge-aware smoothness; frames and flow;
* ``scribbles_no_motion`` -- the same without the motion stream (the no-motion ablation);
* ``wsvsod`` -- ``scribbles`` + WSVSOD's cross-frame foreground/background similarity loss;
* ``fully_supervised`` -- dense masks on every pixel (the upper bound), frames and flow.

Configurations are :class:`VideoPipelineConfig`; named values in :data:`VIDEO_PIPELINES`.

Real data (:data:`VIDEO_DATASETS`) is a parameter: ``dataset="davis2016"`` (or ``"davsod"``) with
``dataset_root`` (the unpacked release) and ``scribble_root`` (the WSVSOD scribbles of its training
sequences) trains on the scribbled training split cut into clips of ``clip_length`` frames resized to
``frame_size`` (flow estimated by Farneback, as for the world) and scores the test split's whole
sequences at their own resolution::

    VideoRun(method="wsvsod", preset="video_gpu", dataset="davis2016", dataset_root="~/data/DAVIS",
             scribble_root="~/data/DAVIS-S", device="cuda").run()
"""

from __future__ import annotations

import dataclasses
import io
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import atomic_write_bytes
from ..configbase import Config, at_least
from ..data.presets import VIDEO_PRESETS
from ..data.video import SyntheticVideo
from ..data.video_real import VideoClips, davis2016, davsod
from ..devices import resolve_device
from ..eval.video_saliency import VideoSaliencyMeter, warping_error
from ..models.config import VideoModelConfig
from ..train.config import PretrainConfig, TrainConfig
from ..train.video import DenseSaliencyLoss, ScribbleSaliencyLoss, predict_saliency
from .artifacts import dataset_id, get_video_saliency
from .presets import PIPELINES

__all__ = ["SHOWCASE_FRAMES", "SHOWCASE_LEVELS", "VIDEO_DATASETS", "VIDEO_METHODS", "VIDEO_PARAMETERS", "VIDEO_PIPELINES",
           "VideoPipelineConfig", "VideoRun",
           "validate_video_params", "video_run_config"]


@dataclass(frozen=True)
class VideoPipelineConfig(Config):
    """The video baselines' network, training and evaluation protocol."""

    pretraining: PretrainConfig = field(default_factory=PretrainConfig)
    """How the encoders' ``init="synthetic"`` weights were pre-trained (the image track's backbone)."""
    model: VideoModelConfig = field(default_factory=VideoModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=8, batch_size=8, lr=1e-3))
    window: int = 4
    """Frames per training window (WSVSOD trains on clips of 4)."""
    smooth_weight: float = 0.3
    """Weight of the edge-aware smoothness term (WSVSOD's 0.3)."""
    similarity_weight: float = 1.0
    """Weight of the cross-frame fg/bg similarity term of ``wsvsod``."""
    skip_ends: bool = True
    """Skip each sequence's first and last frame in the metrics (the VSOD toolkits' protocol)."""
    frame_size: tuple[int, ...] = (256, 448)
    """Real data only: the (H, W) frames are resized to for training and prediction (the metrics are
    computed at each sequence's own resolution)."""
    clip_length: int = 12
    """Real data only: training sequences are cut into clips of this many frames (as the world's)."""

    rules = {"window": at_least(1), "smooth_weight": at_least(0), "similarity_weight": at_least(0),
             "clip_length": at_least(2)}

    def validate(self) -> None:
        if len(self.frame_size) != 2 or min(self.frame_size) < 8:
            raise ValueError(f"frame_size must be (H, W) with both >= 8, got {self.frame_size!r}")


# ``video_cpu``: 150 clips x 12 frames; the epochs are provisional until chosen on held-out
# training clips (the schedule benchmark of the video suite); they are part of every cache key.
VIDEO_PIPELINES: dict[str, VideoPipelineConfig] = {
    "video_cpu": VideoPipelineConfig(),
    "video_gpu": VideoPipelineConfig(train=TrainConfig(epochs=20, batch_size=16, lr=1e-3)),
    # the tiny pipeline's small pretraining world: init="synthetic" pre-trains in seconds in tests
    "video_tiny": VideoPipelineConfig(pretraining=PIPELINES["tiny"].pretraining, train=TrainConfig(epochs=1, batch_size=2),
                                      window=2, frame_size=(32, 48), clip_length=4),
}

#: Each method: its objective ("scribbles" or "dense"), whether the cross-frame similarity is on,
#: whether the motion stream is used, and what it is.
VIDEO_METHODS: dict[str, dict[str, Any]] = {
    "scribbles": {"labels": "scribbles", "similarity": False, "motion": "stream",
                  "summary": "partial BCE on scribbled pixels + edge-aware smoothness; frames and estimated flow"},
    "scribbles_no_motion": {"labels": "scribbles", "similarity": False, "motion": "none",
                            "summary": "the scribble baseline on frames alone (no-motion ablation)"},
    "wsvsod": {"labels": "scribbles", "similarity": True, "motion": "stream",
               "summary": "scribbles + WSVSOD's cross-frame foreground/background similarity loss"},
    "fully_supervised": {"labels": "dense", "similarity": False, "motion": "stream",
                         "summary": "dense masks on every pixel: the upper bound"},
}

#: The test frames whose predictions a benchmark run keeps for the chapter's pictures, and their grey levels.
SHOWCASE_FRAMES, SHOWCASE_LEVELS = (2, 5, 8), 16

VIDEO_PARAMETERS: dict[str, Any] = {"preset": "video_cpu", "method": "scribbles", "init": None, "seed": 0,
                                    "device": "cpu", "dataset": "synthetic", "dataset_root": None,
                                    "scribble_root": None, "test_split": None}

#: The real data sets: the loader, the training split (scribbled) and the default test split.
VIDEO_DATASETS: dict[str, dict[str, Any]] = {
    "davis2016": {"loader": davis2016, "train": "train", "test": "val",
                  "summary": "DAVIS 2016 at 480p with the DAVIS-S scribbles; tested on the 20 val sequences"},
    "davsod": {"loader": davsod, "train": "train", "test": "Easy-35",
               "summary": "DAVSOD with the DAVSOD-S scribbles; tested on Easy-35 (or Normal-25, Difficult-20, test)"},
}


def validate_video_params(params: dict, check_machine: bool = True) -> None:
    """Raise ``ValueError`` naming the parameter that cannot run. ``check_machine=False`` skips what
    depends on this machine (the data folders exist, the device is there): a run's identity must not."""
    unknown = set(params) - set(VIDEO_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown video parameter(s) {sorted(unknown)}; expected some of {sorted(VIDEO_PARAMETERS)}")
    p = {**VIDEO_PARAMETERS, **params}
    if p["preset"] not in VIDEO_PIPELINES:
        raise ValueError(f"unknown video preset {p['preset']!r}: expected one of {sorted(VIDEO_PIPELINES)}")
    if p["dataset"] == "synthetic":
        if p["preset"] not in VIDEO_PRESETS:
            raise ValueError(f"video preset {p['preset']!r} has no synthetic world: expected one of {sorted(VIDEO_PRESETS)}")
        for k in ("dataset_root", "scribble_root", "test_split"):
            if p[k] is not None:
                raise ValueError(f"{k} is only used with a real data set (dataset one of {sorted(VIDEO_DATASETS)})")
    elif p["dataset"] in VIDEO_DATASETS:
        for k, what in (("dataset_root", "the unpacked release"), ("scribble_root", "the WSVSOD scribbles")):
            if not p[k]:
                raise ValueError(f"dataset={p['dataset']!r} needs {k}=<folder of {what}>")
            if check_machine and not Path(p[k]).expanduser().is_dir():
                raise ValueError(f"{k} {p[k]!r} does not exist")
    else:
        raise ValueError(f"unknown video dataset {p['dataset']!r}: expected 'synthetic' or one of {sorted(VIDEO_DATASETS)}")
    if p["method"] not in VIDEO_METHODS:
        raise ValueError(f"unknown video method {p['method']!r}: expected one of {sorted(VIDEO_METHODS)}")
    if p["init"] is not None and p["init"] not in ("scratch", "synthetic", "imagenet"):
        raise ValueError(f"init must be scratch, synthetic or imagenet (or None for the preset's), got {p['init']!r}")
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {p['seed']!r}")
    if check_machine:
        resolve_device(p["device"])


def video_run_config(params: dict, check_machine: bool = True) -> VideoPipelineConfig:
    """The :class:`VideoPipelineConfig` a parameter set asks for: the preset's, with the method's
    motion stream and ``init`` applied (cheap: nothing is loaded)."""
    validate_video_params(params, check_machine)
    p = {**VIDEO_PARAMETERS, **params}
    cfg = VIDEO_PIPELINES[p["preset"]]
    encoder = cfg.model.encoder if p["init"] is None else dataclasses.replace(cfg.model.encoder, init=p["init"])
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, encoder=encoder,
                                                              motion=VIDEO_METHODS[p["method"]]["motion"]))


class VideoRun:
    """One run of a video baseline (module docstring). Attributes filled by the stages:
    ``model``, ``info``, ``predictions`` (N, T, H, W), ``metrics``, ``seconds``."""

    def __init__(self, progress: bool = True, **params: Any) -> None:
        validate_video_params(params)
        self.params = {**VIDEO_PARAMETERS, **params}
        self.spec = VIDEO_METHODS[self.params["method"]]
        self.cfg = video_run_config(self.params)
        self.device = resolve_device(self.params["device"])
        self.progress = progress
        p = self.params
        if p["dataset"] == "synthetic":
            world = VIDEO_PRESETS[p["preset"]]
            self.train_set = SyntheticVideo(world, "train", progress=progress)
            self.test_set = SyntheticVideo(world, "test", progress=progress)
        else:  # real sequences: scribbled training clips, whole test sequences (metrics per sequence)
            spec = VIDEO_DATASETS[p["dataset"]]
            load = spec["loader"]
            self.train_set = VideoClips(load(p["dataset_root"], spec["train"], p["scribble_root"]), self.cfg.frame_size,
                                        self.cfg.clip_length)
            self.test_set = VideoClips(load(p["dataset_root"], p["test_split"] or spec["test"]), self.cfg.frame_size, None)
        self.model = self.info = self.predictions = None
        self.metrics: dict[str, Any] = {}
        self.per_sequence: dict[str, dict[str, float]] = {}
        self.seconds: dict[str, float] = {}

    def objective(self):
        if self.spec["labels"] == "dense":
            return DenseSaliencyLoss()
        return ScribbleSaliencyLoss(smooth_weight=self.cfg.smooth_weight,
                                    similarity_weight=self.cfg.similarity_weight if self.spec["similarity"] else 0.0)

    def train(self) -> dict:
        """The method's network on the training clips (from the cache when it exists)."""
        self.model, self.info = get_video_saliency(self.train_set, self.cfg.model, self.cfg.train, self.objective(),
                                                   seed=self.params["seed"], window=self.cfg.window, device=self.device,
                                                   progress=self.progress, pretraining=self.cfg.pretraining)
        self.seconds["train"] = self.info["seconds"]
        return self.info

    def evaluate(self) -> dict:
        """Metrics on the test clips: per sequence, then over sequences (all clips, camouflaged
        ones, the others), and the warping error (true flow, valid pixels) beside the ground
        truth's and the floor (0, reached by any constant prediction)."""
        if self.model is None:
            self.train()
        t0 = time.perf_counter()
        if self.params["dataset"] != "synthetic":
            return self._evaluate_real(t0)
        self.predictions = predict_saliency(self.model, self.test_set, device=self.device, progress=self.progress)
        meters = {"all": VideoSaliencyMeter(self.cfg.skip_ends), "camouflaged": VideoSaliencyMeter(self.cfg.skip_ends),
                  "plain": VideoSaliencyMeter(self.cfg.skip_ends)}
        warp_pred, warp_gt = [], []
        for i in range(len(self.test_set)):
            clip = self.test_set[i]
            # the synthetic world knows the exact motion and which pixels it is defined for: the
            # warping error then measures the prediction, not occlusions or flow errors
            gts, flow, valid = clip["masks"].numpy(), clip["true_flow"].numpy(), clip["valid"].numpy()
            meters["all"].update(clip["name"], self.predictions[i], gts)
            meters["camouflaged" if clip["camouflaged"] else "plain"].update(clip["name"], self.predictions[i], gts)
            warp_pred.append(warping_error(self.predictions[i], flow, valid))
            warp_gt.append(warping_error(gts.astype(np.float64), flow, valid))
        for part, m in meters.items():
            if len(m):
                r = m.compute()
                prefix = "" if part == "all" else f"{part}_"
                self.metrics.update({f"{prefix}{k}": r[k] for k in ("s_measure", "max_f", "max_e", "mae")})
                self.metrics[f"{prefix}sequences"] = r["sequences"]
        self.metrics.update(warping_error=float(np.mean(warp_pred)), warping_error_gt=float(np.mean(warp_gt)),
                            warping_error_floor=0.0)
        # per clip, so that a chapter can find where a method fails without re-running it
        self.per_sequence = {name: {k: r[k] for k in ("s_measure", "mae")} for name, r in meters["all"].per_sequence().items()}
        self.seconds["evaluate"] = time.perf_counter() - t0
        return self.metrics

    def save_predictions(self, path: str | Path, frames: tuple[int, ...] | None = None, levels: int = 256) -> Path:
        """The test predictions as a compressed ``.npz`` (atomically), for pictures: ``saliency`` (N, F, H, W)
        uint8 quantised to ``levels`` steps (``q = floor(p * levels)``, read back as ``(q + 0.5) / levels``),
        ``frames`` (the frame indices kept; None: all), ``levels`` and ``names``. Synthetic data only (real
        sequences differ in length). The metrics are computed from the full-precision predictions."""
        if not 2 <= levels <= 256:
            raise ValueError(f"levels must be in [2, 256], got {levels}")
        if self.predictions is None:
            self.evaluate()
        if isinstance(self.predictions, list):
            raise ValueError("save_predictions is for the synthetic world's clips; real sequences differ in length")
        T = self.predictions.shape[1]
        kept = list(range(T)) if frames is None else [int(t) for t in frames]
        if not kept or not all(0 <= t < T for t in kept):
            raise ValueError(f"frames must be indices in [0, {T}), got {frames!r}")
        q = np.minimum(np.floor(self.predictions[:, kept] * levels), levels - 1).astype(np.uint8)
        buf = io.BytesIO()
        names = np.array([self.test_set[i]["name"] for i in range(len(self.test_set))])
        np.savez_compressed(buf, saliency=q, frames=np.array(kept), levels=np.array(levels), names=names)
        atomic_write_bytes(Path(path), buf.getvalue())
        return Path(path)

    def _evaluate_real(self, t0: float) -> dict:
        """Real sequences: predict at ``frame_size``, score at each sequence's own resolution; the
        warping error uses the estimated flow (no true motion is known) on every pixel."""
        meter, warp_pred, warp_gt = VideoSaliencyMeter(self.cfg.skip_ends), [], []
        self.predictions = []
        for i in range(len(self.test_set)):
            clip = self.test_set[i]
            pred = predict_saliency(self.model, _One(clip), device=self.device, progress=False)[0]
            full = clip["full_masks"].numpy()
            up = torch.nn.functional.interpolate(torch.from_numpy(pred)[:, None], size=full.shape[-2:], mode="bilinear",
                                                 align_corners=False)[:, 0].clamp(0, 1).numpy()
            meter.update(clip["name"], up, full)
            flow = clip["flow"].numpy()
            warp_pred.append(warping_error(pred, flow))
            warp_gt.append(warping_error(clip["masks"].numpy().astype(np.float64), flow))
            self.predictions.append(pred)
        r = meter.compute()
        self.per_sequence = {name: {k: v[k] for k in ("s_measure", "mae")} for name, v in meter.per_sequence().items()}
        self.metrics.update({k: r[k] for k in ("s_measure", "max_f", "max_e", "mae")}, sequences=r["sequences"],
                            warping_error=float(np.mean(warp_pred)), warping_error_gt=float(np.mean(warp_gt)),
                            warping_error_floor=0.0)
        self.seconds["evaluate"] = time.perf_counter() - t0
        return self.metrics

    def run(self) -> dict:
        self.train()
        self.evaluate()
        return self.record()

    def record(self, run_id: str | None = None, suite: str | None = None) -> dict:
        """Everything measured, JSON-able."""
        return {"run_id": run_id, "suite": suite, "params": dict(self.params), "config": self.cfg.to_dict(),
                "data": {"train": dataset_id(self.train_set), "test": dataset_id(self.test_set)},
                "metrics": dict(self.metrics), "per_sequence": dict(self.per_sequence), "seconds": dict(self.seconds),
                "from_cache": {"train": None if self.info is None else self.info.get("from_cache")},
                "environment": {"torch": torch.__version__, "python": platform.python_version(),
                                "device": str(self.device), "threads": torch.get_num_threads()},
                "date": time.strftime("%Y-%m-%d %H:%M")}


class _One(torch.utils.data.Dataset):
    """One item as a data set (for :func:`predict_saliency` on a sequence of its own length)."""

    def __init__(self, item: dict) -> None:
        self.item = item

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> dict:
        return self.item
