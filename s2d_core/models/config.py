"""Configuration of the networks: CNN backbones, the ViT classifier, the tiny SAM.

Frozen dataclasses validated on creation (:mod:`s2d_core.configbase`); the values of each
preset are in :mod:`s2d_core.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..configbase import Config, at_least, between, check, non_negative, one_of, positive

__all__ = ["INITS", "MOTIONS", "ModelConfig", "TinySAMConfig", "VideoModelConfig", "ViTConfig"]

#: Where a network's weights can start: random, pre-trained on the pretraining world, or ImageNet.
INITS = ("scratch", "synthetic", "imagenet")


@dataclass(frozen=True)
class ModelConfig(Config):
    """A backbone from timm plus how to build it."""

    backbone: str = "resnet10t"
    """Any timm model that supports ``features_only`` (ResNets, ConvNeXts, ...)."""
    output_stride: int = 8
    """Ratio of input size to final feature-map size: 8 or 16 (dilated last stages), or 32."""
    init: str = "scratch"
    """Where the backbone's weights start: ``"scratch"`` (random), ``"synthetic"`` (pre-trained on
    the pretraining world, :mod:`s2d_core.data.pretraining`: pre-trained once and cached; for the
    ``cpu`` preset checked against a reference sha256) or ``"imagenet"`` (timm's weights;
    offline, give ``pretrained_file``)."""
    pretrained_file: str | None = None
    """Local weights file used with ``init="imagenet"`` (``.pth``/``.bin``/``.safetensors``) or
    ``init="synthetic"`` (the pipeline fills it in: :func:`s2d_core.pipeline.pretrained_weights`)."""
    aspp_rates: tuple[int, ...] = (1, 2, 4)
    """Dilation rates of the segmenter's ASPP branches, in feature-map cells (unused by the
    classifier). DeepLab's (6, 12, 18) suit 33 x 33 maps; 8 x 8 maps need small rates."""

    rules = {"output_stride": one_of(8, 16, 32), "init": one_of(*INITS)}

    def validate(self) -> None:
        check(self.backbone != "", "ModelConfig.backbone must be a timm model name")
        check(len(self.aspp_rates) >= 1 and all(r >= 1 for r in self.aspp_rates),
              f"ModelConfig.aspp_rates must be positive integers, got {self.aspp_rates}")
        check(self.pretrained_file is None or self.init != "scratch",
              "pretrained_file is given but init='scratch'; set init='imagenet' (or 'synthetic') to use it")


@dataclass(frozen=True)
class ViTConfig(Config):
    """A Vision Transformer classifier from timm with one class token per class (MCTformer-style).

    ``backbone`` names a timm ViT architecture; ``patch_size``, ``embed_dim``, ``depth`` and
    ``num_heads`` override it (``None``: the architecture's own). With ``init="imagenet"`` the
    architecture must stay as published (only ``img_size`` may change: timm resamples the
    position embedding), and the single pretrained class token initialises every class token.
    ``init="synthetic"`` loads the transformer pre-trained on the pretraining world for this
    architecture (class and patch tokens, :class:`~s2d_core.models.vit.ViTPretrainer`)."""

    backbone: str = "vit_tiny_patch16_224"
    img_size: int = 64
    """Training image size; other sizes work at inference (the position embedding is resampled)."""
    patch_size: int | None = 8
    """8 px patches on 64 px images give an 8 x 8 token grid, the CNN track's CAM resolution."""
    embed_dim: int | None = 128
    depth: int | None = 4
    num_heads: int | None = 4
    init: str = "scratch"
    """``"scratch"``, ``"synthetic"`` or ``"imagenet"``, as in :class:`ModelConfig`."""
    pretrained_file: str | None = None
    """Local weights file for ``init="imagenet"`` (offline machines) or ``"synthetic"``, as in :class:`ModelConfig`."""
    drop_path_rate: float = 0.0
    pooling: str = "max"
    """How the patch-token scores are pooled into the image score: ``"max"`` (global max pooling,
    as ToCo) or ``"avg"`` (GAP, as the CNN track and MCTformer-V2). Trained from scratch, GAP lets
    every token carry every class (global attention) and its patch-token CAM covers the whole
    image (measured: seed mIoU 17 against 37 with max pooling, first 300 training images)."""

    rules = {"pooling": one_of("avg", "max"), "img_size": at_least(8), "patch_size": at_least(1),
             "embed_dim": at_least(1), "depth": at_least(1), "num_heads": at_least(1),
             "drop_path_rate": between(0, 1, open_hi=True), "init": one_of(*INITS)}

    def validate(self) -> None:
        check(self.backbone.startswith(("vit_", "deit_")),
              f"ViTConfig.backbone must name a timm ViT (vit_* or deit_*), got {self.backbone!r}")
        if self.patch_size is not None:
            check(self.img_size % self.patch_size == 0,
                  f"ViTConfig.img_size {self.img_size} must be a multiple of patch_size {self.patch_size}")
        if self.embed_dim is not None and self.num_heads is not None:
            check(self.embed_dim % self.num_heads == 0,
                  f"ViTConfig.embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        check(self.pretrained_file is None or self.init != "scratch",
              "ViTConfig.pretrained_file is given but init='scratch'; set init='imagenet' (or 'synthetic') to use it")
        if self.init == "imagenet":
            changed = [k for k in ("patch_size", "embed_dim", "depth", "num_heads") if getattr(self, k) is not None]
            check(not changed, f"ViTConfig: pretrained weights fix the architecture; set {changed} to None "
                               f"(or init='scratch' to train this configuration from scratch)")


@dataclass(frozen=True)
class TinySAMConfig(Config):
    """A SAM small enough for a 2-core CPU, built from segment-anything's own modules
    (:mod:`s2d_core.models.tiny_sam`) and pre-trained class-agnostically on the object world
    (:mod:`s2d_core.data.shapes`). SAM ViT-B for scale: 1024 px, 16 px patches, width 768,
    12 blocks, prompt width 256."""

    img_size: int = 64
    """Input side in pixels: images are resized (longest side) and padded to it, as in SAM."""
    patch_size: int = 4
    """4 px: a 16 x 16 image embedding and 64 x 64 masks, the input's resolution. (8 px patches
    train 4x faster but reach only about 0.49 object IoU from a click, 0.64 from a box: their
    32 x 32 masks cannot follow our wiggly outlines.)"""
    embed_dim: int = 96
    depth: int = 4
    num_heads: int = 3
    prompt_dim: int = 64
    """Width of the image embedding, the prompt tokens and the mask decoder (SAM: 256)."""
    decoder_depth: int = 2
    decoder_mlp_dim: int = 256
    decoder_heads: int = 4
    n_scenes: int = 8000
    """Object-world scenes to pre-train on (each gives several objects and prompts)."""
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01

    rules = {k: at_least(1) for k in ("patch_size", "embed_dim", "num_heads", "depth", "decoder_depth",
                                      "decoder_mlp_dim", "decoder_heads", "n_scenes", "steps", "batch_size")}
    rules.update(lr=positive, weight_decay=non_negative)

    def validate(self) -> None:
        check(self.img_size >= 32 and self.img_size % self.patch_size == 0,
              f"TinySAMConfig.img_size must be >= 32 and a multiple of patch_size={self.patch_size}, got {self.img_size}")
        check(self.embed_dim % self.num_heads == 0,
              f"TinySAMConfig.embed_dim={self.embed_dim} must be divisible by num_heads={self.num_heads}")
        check(self.prompt_dim % 8 == 0 and (self.prompt_dim // 2) % self.decoder_heads == 0,
              f"TinySAMConfig.prompt_dim must be a multiple of 8, and prompt_dim / 2 a multiple of "
              f"decoder_heads={self.decoder_heads} (the decoder's cross-attention halves the width), got {self.prompt_dim}")


MOTIONS = ("none", "stream")


@dataclass(frozen=True)
class VideoModelConfig(Config):
    """The per-frame saliency network of the video chapters (:class:`~s2d_core.models.video_saliency.SaliencyNet`).

    ``encoder`` is the image backbone (the ``cpu`` family: ResNet-10 at output stride 8, starting
    where ``encoder.init`` says); with ``motion="stream"`` a second encoder of the same kind reads
    the colour-coded optical flow and is fused into the image stream at every level by a gate
    (``"none"``: frames only, the no-motion ablation).
    """

    encoder: ModelConfig = ModelConfig(init="synthetic")
    motion: str = "stream"
    """``"stream"`` (a second encoder on the flow image, gated fusion) or ``"none"``."""
    decoder_dim: int = 48
    """Channels of the light decoder (two levels: stride 4 and the encoder's last)."""

    rules = {"motion": one_of(*MOTIONS), "decoder_dim": at_least(8)}
