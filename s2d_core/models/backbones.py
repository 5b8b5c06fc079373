"""Backbones from timm: every stage's feature map, at a chosen output stride.

``create_backbone(cfg)`` returns a timm ``features_only`` network whose forward pass gives a
list of feature maps, one per stage, finest first: ``[(B, D_1, H/2 or H/4, ...), ...,
(B, D_L, H/s, W/s)]`` with ``s = cfg.output_stride``. Later chapters use the intermediate
stages (hierarchical features for prototypes); the CAM uses the last.

``cfg.init`` says where the weights start: ``"scratch"``; ``"synthetic"``, the backbone
pre-trained on the pretraining world, read from ``cfg.pretrained_file`` (which
:func:`s2d_core.pipeline.pretrained_weights` finds or builds); or ``"imagenet"``. ImageNet
weights cannot be downloaded everywhere (this book is built offline): they come from
``pretrained_file`` if given, else timm tries the Hugging Face hub; when that fails the error
says which file is needed and how to pass it.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch

from .config import ModelConfig
from .weights import load_into, load_weights


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded."""


def _weights_hint(name: str) -> str:
    try:
        cfg = timm.models.get_pretrained_cfg(name)
        hub = getattr(cfg, "hf_hub_id", None) or "?"
        url = getattr(cfg, "url", None) or ""
    except Exception:  # noqa: BLE001 - only used to build a message
        hub, url = "?", ""
    where = f"Hugging Face repo 'timm/{hub.split('/')[-1]}'" if hub != "?" else "timm's model hub"
    alt = f" (or {url})" if url else ""
    return (f"ImageNet weights of timm model {name!r} are needed: download them from {where}{alt} on a "
            f"machine with internet, copy the file here, and pass it as "
            f"ModelConfig(init='imagenet', pretrained_file='path/to/weights.safetensors'); "
            f"or use init='synthetic' (pre-trained on the pretraining world, the book's default) or 'scratch'.")


def create_timm_model(name: str, pretrained: bool = False, pretrained_file: str | None = None,
                      **kwargs) -> torch.nn.Module:
    """``timm.create_model`` with offline-friendly pretrained weights and errors that say what to do.

    With ``pretrained`` the weights come from ``pretrained_file`` if given (it must exist), else
    timm tries the Hugging Face hub; when that fails the :class:`PretrainedWeightsError` names
    the file needed and how to pass it. Shared by the CNN backbones and the ViT.
    """
    if pretrained and pretrained_file is not None:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(f"pretrained_file {str(path)!r} does not exist. " + _weights_hint(name))
        kwargs["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except PretrainedWeightsError:
        raise
    except (OSError, RuntimeError) as e:  # hub offline (OSError subclasses), unreadable file, wrong keys
        if not pretrained:
            raise
        raise PretrainedWeightsError(f"could not load pretrained weights for {name!r} "
                                     f"({type(e).__name__}: {str(e)[:200]}). " + _weights_hint(name)) from e


def create_backbone(cfg: ModelConfig) -> torch.nn.Module:
    """A timm feature extractor for ``cfg`` (see the module docstring for its output)."""
    if not timm.is_model(cfg.backbone):
        close = timm.list_models(f"*{cfg.backbone.split('_')[0][:6]}*")[:8]
        raise ValueError(f"unknown timm backbone {cfg.backbone!r}" + (f"; similar names: {close}" if close else ""))
    try:
        net = create_timm_model(cfg.backbone, cfg.init == "imagenet", cfg.pretrained_file if cfg.init == "imagenet" else None,
                                features_only=True, output_stride=cfg.output_stride)
    except TypeError as e:  # a model that has no features_only / output_stride support
        raise ValueError(f"timm backbone {cfg.backbone!r} cannot be built with features_only and "
                         f"output_stride={cfg.output_stride}: {e}") from e
    if cfg.init == "synthetic":
        load_synthetic(net, cfg.pretrained_file, f"timm backbone {cfg.backbone!r}")
    return net


def load_synthetic(net: torch.nn.Module, path: str | None, what: str) -> None:
    """Load the weights pre-trained on the pretraining world from ``path`` into ``net``."""
    if path is None:
        raise PretrainedWeightsError(
            f"init='synthetic' needs the pre-trained weights file of {what} as pretrained_file; the pipeline "
            f"(get_classifier, get_segmenter, s2d_core.pipeline.pretrained_weights) finds the shipped file or builds it")
    load_into(net, load_weights(path), path, what)


class InputNormalisation(torch.nn.Module):
    """``(x - mean) / std`` per channel for images (B, 3, H, W) in [0, 1].

    ImageNet weights expect the statistics they were trained with (timm's ``pretrained_cfg``:
    ImageNet mean and std for most); a network trained from scratch or pre-trained on the
    pretraining world gets the identity (mean 0, std 1), which leaves its input bit for bit
    unchanged.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if cfg.init == "imagenet":
            pc = timm.models.get_pretrained_cfg(cfg.backbone)
            if pc is not None:
                mean, std = tuple(pc.mean), tuple(pc.std)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def feature_channels(net: torch.nn.Module) -> list[int]:
    """Channels of each stage of a :func:`create_backbone` network, finest first."""
    return list(net.feature_info.channels())


def last_stage(net: torch.nn.Module) -> torch.nn.Module:
    """The module producing the last feature map (the target layer for Grad-CAM-style tools)."""
    name = net.feature_info.module_name()[-1]
    try:  # timm's FeatureListNet flattens nested names with "_"
        return net.get_submodule(name.replace(".", "_"))
    except AttributeError:
        return net.get_submodule(name)
