"""Densification methods: what sits between the classifier and the pseudo masks.

Every method is registered in :data:`METHODS` under the name the benchmarks use, as a
function with one signature::

    cam_method, info = METHODS[name](train_set, cfg, seed=0, device="cpu", progress=True)
    cams = cam_method(images, tags)     # (B, 3, H, W), (B, C) -> (B, C, H, W) in [0, 1]

It trains (or loads from the cache) whatever networks it needs on ``train_set``'s tags and
returns a CAM method with the uniform call signature of :mod:`s2d_core.cam`, plus ``info``
(training time, losses, whether it came from the cache). ``"cam"`` is the baseline: the plain
classifier CAM, no densification. ``"proto"``: SIPE-style prototype CAM on the same
classifier; ``"c3"``: classifier/prototype mutual calibration; ``"c4"``: several prototypes
per class through optimal transport. The ViT track: ``"vit_cam"`` (patch-token CAM),
``"vit_attn"`` (class-token attention) and ``"c5"`` (OT-assisted proxies), all on a ViT
classifier with one class token per class. Later chapters add their methods here.
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


def prototype_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """SIPE-style prototype CAM read from the baseline classifier (no extra training)."""
    from .prototypes import PrototypeCAM

    model, info = get_classifier(train_set, cfg.classifier, cfg.classifier_train, seed=seed, device=device,
                                 progress=progress)
    return PrototypeCAM(model, cfg.cam, cfg.prototype), {"classifier": info}


def calibrated_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """C3: a classifier trained with classifier/prototype mutual calibration, read out as the
    calibrated prototype CAM (:mod:`.calibration`)."""
    from .calibration import C3Objective, CalibratedCAM

    model, info = get_classifier(train_set, cfg.classifier, cfg.classifier_train, seed=seed, device=device,
                                 progress=progress, objective=C3Objective(cfg.prototype, cfg.c3))
    return CalibratedCAM(model, cfg.cam, cfg.c3, cfg.prototype), {"classifier": info}


def multi_prototype_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """C4: a classifier trained with the multi-prototype OT consistency, read out as the
    multi-prototype CAM (:mod:`.multiproto`; a dataset-level bank when ``cfg.c4.scope`` says so)."""
    from ..train.artifacts import resolve_device
    from .multiproto import C4Objective, MultiPrototypeCAM, prototype_bank

    device = resolve_device(device)
    model, info = get_classifier(train_set, cfg.classifier, cfg.classifier_train, seed=seed, device=device,
                                 progress=progress, objective=C4Objective(cfg.prototype, cfg.c4))
    bank = prototype_bank(model, train_set, cfg.prototype, cfg.c4, device=device, seed=seed) \
        if cfg.c4.scope == "dataset" else None
    return MultiPrototypeCAM(model, cfg.cam, cfg.c4, cfg.prototype, bank), {"classifier": info}


def vit_patch_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """ViT track baseline: the patch-token CAM of a ViT classifier with one class token per class."""
    from ..train.artifacts import get_vit_classifier

    model, info = get_vit_classifier(train_set, cfg.vit, cfg.vit_train, seed=seed, device=device, progress=progress)
    return CAM.from_config(model, cfg.cam), {"classifier": info}


def vit_attention(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """ViT track baseline: class-token attention maps of the same ViT classifier (:mod:`s2d_core.cam.attention`)."""
    from ..cam.attention import ClassTokenAttention
    from ..train.artifacts import get_vit_classifier

    model, info = get_vit_classifier(train_set, cfg.vit, cfg.vit_train, seed=seed, device=device, progress=progress)
    return ClassTokenAttention(model, cfg.cam, cfg.attention), {"classifier": info}


def proxy_cam(train_set: Dataset, cfg: PipelineConfig, seed: int = 0, device="cpu", progress: bool = True):
    """C5: a ViT classifier trained with the OT-enhanced contrastive loss, read out as the
    OT-assisted proxy CAM (:mod:`.proxies`)."""
    from ..train.artifacts import get_vit_classifier
    from .proxies import C5Objective, ProxyCAM

    model, info = get_vit_classifier(train_set, cfg.vit, cfg.vit_train, seed=seed, device=device, progress=progress,
                                     objective=C5Objective(cfg.c5))
    return ProxyCAM(model, cfg.cam, cfg.c5), {"classifier": info}


METHODS: dict[str, Callable] = {"cam": plain_cam, "proto": prototype_cam, "c3": calibrated_cam,
                                "c4": multi_prototype_cam, "vit_cam": vit_patch_cam, "vit_attn": vit_attention,
                                "c5": proxy_cam}


def get_method(name: str) -> Callable:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}: expected one of {sorted(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "calibrated_cam", "get_method", "multi_prototype_cam", "plain_cam", "prototype_cam", "proxy_cam",
           "vit_attention", "vit_patch_cam"]
