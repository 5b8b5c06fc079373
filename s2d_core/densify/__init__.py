"""Densification methods: what sits between the classifier and the pseudo masks.

Every method is registered in :data:`METHODS` under the name the benchmarks use, as a
function with one signature::

    cam_method, info = METHODS[name](train_set, cfg, seed=0, device="cpu", progress=True)
    cams = cam_method(images, tags)     # (B, 3, H, W), (B, C) -> (B, C, H, W) in [0, 1]

It trains (or loads from the cache) whatever networks it needs on ``train_set``'s tags and
returns a CAM method with the uniform call signature of :mod:`s2d_core.cam`, plus ``info``
(training time, losses, whether it came from the cache). ``"cam"`` is the baseline: the plain
classifier CAM, no densification. Later chapters add their methods here.
"""

from __future__ import annotations

from typing import Callable

from torch.utils.data import Dataset

from ..cam.cam import CAM
from ..config import PipelineConfig
from ..train.artifacts import get_classifier


def plain_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """The baseline: a classifier trained on tags, read out as a multi-scale CAM."""
    model, info = get_classifier(train_set, cfg.classifier, cfg.classifier_train, seed=seed, device=device,
                                 progress=progress)
    return CAM.from_config(model, cfg.cam), {"classifier": info}


METHODS: dict[str, Callable] = {"cam": plain_cam}


def get_method(name: str) -> Callable:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}: expected one of {sorted(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "get_method", "plain_cam"]
