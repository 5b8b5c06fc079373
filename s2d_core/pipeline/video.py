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
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..configbase import Config, at_least
from ..data.presets import VIDEO_PRESETS
from ..data.video import SyntheticVideo
from ..devices import resolve_device
from ..eval.video_saliency import VideoSaliencyMeter, warping_error
from ..models.config import VideoModelConfig
from ..train.config import PretrainConfig, TrainConfig
from ..train.video import DenseSaliencyLoss, ScribbleSaliencyLoss, predict_saliency
from .artifacts import dataset_id, get_video_saliency
from .presets import PIPELINES

__all__ = ["VIDEO_METHODS", "VIDEO_PARAMETERS", "VIDEO_PIPELINES", "VideoPipelineConfig", "VideoRun",
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

    rules = {"window": at_least(1), "smooth_weight": at_least(0), "similarity_weight": at_least(0)}


# ``video_cpu``: 150 clips x 12 frames; the epochs are provisional until chosen on held-out
# training clips (the schedule benchmark of the video suite); they are part of every cache key.
VIDEO_PIPELINES: dict[str, VideoPipelineConfig] = {
    "video_cpu": VideoPipelineConfig(),
    "video_gpu": VideoPipelineConfig(train=TrainConfig(epochs=20, batch_size=16, lr=1e-3)),
    # the tiny pipeline's small pretraining world: init="synthetic" pre-trains in seconds in tests
    "video_tiny": VideoPipelineConfig(pretraining=PIPELINES["tiny"].pretraining, train=TrainConfig(epochs=1, batch_size=2),
                                      window=2),
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

VIDEO_PARAMETERS: dict[str, Any] = {"preset": "video_cpu", "method": "scribbles", "init": None, "seed": 0,
                                    "device": "cpu"}


def validate_video_params(params: dict) -> None:
    """Raise ``ValueError`` naming the parameter that cannot run."""
    unknown = set(params) - set(VIDEO_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown video parameter(s) {sorted(unknown)}; expected some of {sorted(VIDEO_PARAMETERS)}")
    p = {**VIDEO_PARAMETERS, **params}
    if p["preset"] not in VIDEO_PIPELINES or p["preset"] not in VIDEO_PRESETS:
        raise ValueError(f"unknown video preset {p['preset']!r}: expected one of {sorted(VIDEO_PIPELINES)}")
    if p["method"] not in VIDEO_METHODS:
        raise ValueError(f"unknown video method {p['method']!r}: expected one of {sorted(VIDEO_METHODS)}")
    if p["init"] is not None and p["init"] not in ("scratch", "synthetic", "imagenet"):
        raise ValueError(f"init must be scratch, synthetic or imagenet (or None for the preset's), got {p['init']!r}")
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {p['seed']!r}")
    resolve_device(p["device"])


def video_run_config(params: dict) -> VideoPipelineConfig:
    """The :class:`VideoPipelineConfig` a parameter set asks for: the preset's, with the method's
    motion stream and ``init`` applied (cheap: nothing is loaded)."""
    validate_video_params(params)
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
        world = VIDEO_PRESETS[self.params["preset"]]
        self.train_set = SyntheticVideo(world, "train", progress=progress)
        self.test_set = SyntheticVideo(world, "test", progress=progress)
        self.model = self.info = self.predictions = None
        self.metrics: dict[str, Any] = {}
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
                "metrics": dict(self.metrics), "seconds": dict(self.seconds),
                "from_cache": {"train": None if self.info is None else self.info.get("from_cache")},
                "environment": {"torch": torch.__version__, "python": platform.python_version(),
                                "device": str(self.device), "threads": torch.get_num_threads()},
                "date": time.strftime("%Y-%m-%d %H:%M")}
