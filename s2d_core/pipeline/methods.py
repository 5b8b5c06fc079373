"""Run method X on data Y: find a registered method, train what it needs, return its maps.

Methods are registered where they are defined (:data:`s2d_core.cam.METHODS`,
:data:`s2d_core.pseudo.ENHANCERS`); importing this module imports every stage, so the
registries are complete::

    list_methods()                   # ['cam', 'prototype_cam', ..., 'ot_proxy']
    method_table()                   # a DataFrame: name, aliases, thesis label, paper, what it does
    method, info = build_method("mutual_calibration", train_set, cfg, seed=0)   # or "c3", "cpmc"
    maps = method(batch)             # (B, C, H, W) in [0, 1]
"""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.data import Dataset

from .. import densify, pseudo  # noqa: F401 - importing them registers their methods and enhancers
from ..cam.base import METHODS, MapMethod, MethodSpec
from ..devices import resolve_device
from ..models.config import TinySAMConfig
from ..models.promptable import RandomWalkerPredictor, load_sam, sam_predictor
from ..pseudo.config import C6Config
from ..pseudo.enhancers import ENHANCERS, EnhancerSpec
from .artifacts import get_classifier, get_tiny_sam
from .config import PipelineConfig

__all__ = ["build_method", "enhancer_table", "get_enhancer", "get_method", "list_enhancers", "list_methods",
           "make_predictor", "method_table"]


def list_methods() -> list[str]:
    """Canonical names of every registered map method: the CNN track, then the ViT track, each
    in the order the book teaches them (its baseline first)."""
    names = METHODS.names()
    return sorted(names, key=lambda n: (METHODS.get(n).classifier != "cnn", names.index(n)))


def list_enhancers() -> list[str]:
    """Canonical names of every registered enhancer (C6's prompt strategies)."""
    return ENHANCERS.names()


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (canonical name or alias: ``"c3"``, ``"cpmc"``, ...)."""
    return METHODS.get(name)


def get_enhancer(name: str) -> EnhancerSpec:
    """The registered enhancer ``name`` (canonical name or alias: ``"c6"``, ``"spectral"``, ...)."""
    return ENHANCERS.get(name)


def method_table() -> pd.DataFrame:
    """Every map method: its name, aliases, thesis label, paper, network, whether it trains its
    own classifier, and what it does."""
    rows = [{"name": s.name, "aliases": ", ".join(METHODS.aliases(s.name)), "thesis": s.label or "",
             "paper": s.paper or "", "network": s.classifier, "own training": "yes" if s.objective else "no",
             "what it does": s.summary} for s in (METHODS.get(n) for n in list_methods())]
    return pd.DataFrame(rows)


def enhancer_table() -> pd.DataFrame:
    """Every enhancer: name, aliases, thesis label, paper and what it does."""
    rows = [{"name": s.name, "aliases": ", ".join(ENHANCERS.aliases(s.name)), "thesis": s.label or "",
             "paper": s.paper or "", "what it does": s.summary} for s in (ENHANCERS.get(n) for n in ENHANCERS.names())]
    return pd.DataFrame(rows)


def build_method(name: str, train_set: Dataset, cfg: PipelineConfig, seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = True) -> tuple[MapMethod, dict]:
    """The map method ``name`` over a classifier trained (or loaded from the cache) on
    ``train_set``'s tags with ``cfg``: ``(method, info)``.

    Methods that only read a classifier differently (``cam``, ``prototype_cam``) share one
    network; methods with their own objective (``mutual_calibration``, ...) train their own.
    ``info["classifier"]`` describes the network (training time, losses, whether it came from
    the cache), ``info["spec"]`` is the registry entry.
    """
    spec = METHODS.get(name)
    device = resolve_device(device)
    if spec.classifier == "vit":
        model_cfg, train_cfg = cfg.vit, cfg.vit_train
    else:
        model_cfg, train_cfg = cfg.classifier, cfg.classifier_train
    objective = spec.objective(cfg) if spec.objective is not None else None
    model, info = get_classifier(train_set, model_cfg, train_cfg, seed=seed, device=device, progress=progress,
                                 objective=objective, pretraining=cfg.pretraining)
    method = spec.build(model, cfg, model_key=info["key"], train_set=train_set, device=device, seed=seed)
    return method, {"classifier": info, "spec": spec}


def make_predictor(cfg: C6Config, device: str | torch.device = "cpu", tiny_sam_cfg: TinySAMConfig | None = None,
                   progress: bool = True) -> tuple[object, object | None, dict]:
    """The promptable segmenter ``cfg.segmenter`` names: ``(predictor, feature_predictor, info)``.

    ``feature_predictor`` is the tiny SAM's predictor when the segmenter itself has no image
    embedding (random walker), else None. The tiny SAM is one model for every pipeline seed
    (seed 0), as the real SAM is one checkpoint.
    """
    if cfg.segmenter == "sam":
        return sam_predictor(load_sam(cfg.sam_model_type, cfg.sam_checkpoint, device)), None, {"from_cache": True,
                                                                                                "seconds": 0.0}
    sam, info = get_tiny_sam(tiny_sam_cfg, seed=0, device=device, progress=progress)
    if cfg.segmenter == "tiny_sam":
        return sam_predictor(sam), None, info
    return RandomWalkerPredictor(beta=cfg.rw_beta), sam_predictor(sam), info
