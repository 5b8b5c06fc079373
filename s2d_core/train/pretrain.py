"""Pre-training a backbone on the pretraining world: the book's stand-in for ImageNet training.

Supervised multi-label classification of the world's shape classes from image tags -- no
masks: masks would be supervision a weakly supervised method may not have (the tiny SAM is the
one model that, like SAM, learns from masks). The CNN trains as the CAM classifier does (GAP,
linear head, :class:`~s2d_core.models.objective.PretrainTagLoss`); the ViT trains its class
token and, through a max-pooled patch head, every patch token
(:class:`~s2d_core.models.vit.ViTPretrainer`, see there why). Both run through :func:`fit`:
seeded, resumable, bit for bit reproducible on one CPU kind.

What transfers is the backbone (timm's ``features_only`` network, or the ViT without heads):
:func:`pretrain_backbone` returns its state dict beside the whole pre-training network, whose
heads the pipeline uses once to measure pre-training accuracy on the world's test split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..data.pretraining import SHAPE_CLASSES, PretrainingWorld
from ..models.classifier import Classifier
from ..models.config import ModelConfig, ViTConfig
from ..models.objective import PretrainTagLoss
from ..models.vit import ViTPretrainer
from .config import PretrainConfig
from .loops import fit

__all__ = ["RECIPE_VERSION", "backbone_of", "pretrain_backbone", "pretraining_network"]

#: Recipe version of a pre-trained backbone (this module, the world's own version is in its key).
RECIPE_VERSION = 1


def pretraining_network(model_cfg: ModelConfig | ViTConfig, cfg: PretrainConfig) -> torch.nn.Module:
    """The network pre-trained for ``model_cfg``'s architecture: built from scratch, the world's classes as outputs."""
    k = cfg.world.n_classes
    if k > len(SHAPE_CLASSES):
        raise ValueError(f"PretrainWorldConfig.n_classes={k} exceeds the world's {len(SHAPE_CLASSES)} shape classes")
    if isinstance(model_cfg, ViTConfig):
        return ViTPretrainer(k, dataclasses.replace(model_cfg, init="scratch", pretrained_file=None,
                                                    img_size=cfg.world.image_size, drop_path_rate=0.0))
    if isinstance(model_cfg, ModelConfig):
        return Classifier(k, dataclasses.replace(model_cfg, init="scratch", pretrained_file=None,
                                                 output_stride=cfg.cnn_output_stride))
    raise TypeError(f"model_cfg must be a ModelConfig or a ViTConfig, got {type(model_cfg).__name__}")


def backbone_of(net: torch.nn.Module) -> torch.nn.Module:
    """The part of a pre-training network that transfers: the timm backbone or the ViT."""
    return net.vit if isinstance(net, ViTPretrainer) else net.backbone


def pretrain_backbone(model_cfg: ModelConfig | ViTConfig, cfg: PretrainConfig, device: str | torch.device = "cpu",
                      progress: bool = True, checkpoint: str | Path | None = None,
                      world: PretrainingWorld | None = None) -> tuple[torch.nn.Module, dict]:
    """Pre-train ``model_cfg``'s architecture on the world's ``train`` split.

    Returns the whole pre-training network (heads included, eval mode) and ``fit``'s info
    (``loss`` per epoch, ``seconds``, ``images_per_second``). Seeded by ``cfg.seed``.
    """
    world = world if world is not None else PretrainingWorld(cfg.world, "train", progress=progress)
    vit = isinstance(model_cfg, ViTConfig)
    torch.manual_seed(cfg.seed)
    net = pretraining_network(model_cfg, cfg).to(device)
    info = fit(net, world, PretrainTagLoss(), cfg.vit if vit else cfg.cnn, seed=cfg.seed, device=device,
               desc=f"pretraining {'vit' if vit else model_cfg.backbone}", progress=progress, checkpoint=checkpoint)
    return net.eval(), info
