"""Configuration of the CAM pipeline: plain frozen dataclasses, validated on creation.

The data knobs live in :class:`s2d_core.data.config.SyntheticConfig`; this module holds the
knobs of everything after the data (models, training, CAM, pseudo masks). Named values for
each preset are defined once, in :mod:`s2d_core.presets`. Every dataclass has ``to_dict`` /
``from_dict`` so a configuration round-trips through JSON or YAML (benchmark records store it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


class _Config:
    """Shared helpers: ``to_dict``, ``from_dict`` (rejects unknown keys), ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; expected some of {sorted(names)}")
        kwargs = {}
        for k, v in d.items():
            sub = _SUBCONFIGS.get((cls.__name__, k))
            if sub is not None and isinstance(v, Mapping):
                v = sub.from_dict(v)
            elif isinstance(v, list):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _numbers(cfg, integers: tuple[str, ...] = (), reals: tuple[str, ...] = ()) -> None:
    """Type-check numeric fields before range checks, naming the field (YAML reads ``1e-3``
    as a string; a float epoch count would fail deep inside the loop)."""
    cls = type(cfg).__name__
    for name in integers:
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ValueError(f"{cls}.{name} must be an integer, got {v!r} ({type(v).__name__})")
    for name in reals:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(v, str) else ""
            raise ValueError(f"{cls}.{name} must be a number, got {v!r} ({type(v).__name__}){hint}")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """A backbone from timm plus how to build it."""

    backbone: str = "resnet10t"
    """Any timm model that supports ``features_only`` (ResNets, ConvNeXts, ...)."""
    output_stride: int = 8
    """Ratio of input size to final feature-map size: 8 or 16 (dilated last stages), or 32."""
    pretrained: bool = False
    """Start from ImageNet weights. Offline, give ``pretrained_file``."""
    pretrained_file: str | None = None
    """Local weights file (``.pth``/``.bin``/``.safetensors``) used when ``pretrained``."""
    aspp_rates: tuple[int, ...] = (1, 2, 4)
    """Dilation rates of the segmenter's ASPP branches, in feature-map cells (unused by the
    classifier). DeepLab's (6, 12, 18) suit 33 x 33 maps; 8 x 8 maps need small rates."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("output_stride",))
        _check(isinstance(self.backbone, str) and self.backbone != "", "backbone must be a timm model name")
        _check(self.output_stride in (8, 16, 32), f"output_stride must be 8, 16 or 32, got {self.output_stride}")
        _check(len(self.aspp_rates) >= 1 and all(int(r) >= 1 for r in self.aspp_rates),
               f"aspp_rates must be positive integers, got {self.aspp_rates}")
        _check(self.pretrained_file is None or self.pretrained,
               "pretrained_file is given but pretrained=False; set pretrained=True to use it")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How a network is trained (AdamW + one-cycle schedule, random horizontal flips)."""

    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-4
    crop_size: int | None = None
    """Random square crop (padded where the image is smaller), for data sets whose images differ
    in size (VOC). ``None``: images are used whole and must all have the same size."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("epochs", "batch_size", "crop_size"), reals=("lr", "weight_decay"))
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.crop_size is None or self.crop_size >= 16, f"crop_size must be None or >= 16, got {self.crop_size}")


@dataclass(frozen=True)
class CAMConfig(_Config):
    """How CAMs are read from a trained classifier."""

    scales: tuple[float, ...] = (1.0, 0.5, 1.5)
    """Input scales whose CAMs are averaged (after resizing back to the input size)."""
    flip: bool = True
    """Also average the CAM of the horizontally flipped image."""

    def __post_init__(self) -> None:
        _check(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.scales),
               f"CAMConfig.scales must be numbers, got {self.scales!r}")
        _check(len(self.scales) >= 1 and all(0.1 <= s <= 4 for s in self.scales),
               f"scales must be a non-empty list of values in [0.1, 4], got {self.scales}")


@dataclass(frozen=True)
class CRFConfig(_Config):
    """Dense CRF (Krähenbühl & Koltun 2011) on a label map; defaults are IRN's."""

    iterations: int = 10
    gt_prob: float = 0.7
    """Confidence given to the input labels in the unary term."""
    sxy_gaussian: float = 3.0
    compat_gaussian: float = 3.0
    sxy_bilateral: float = 50.0
    srgb_bilateral: float = 5.0
    compat_bilateral: float = 10.0

    def __post_init__(self) -> None:
        _numbers(self, integers=("iterations",), reals=("gt_prob", "sxy_gaussian", "compat_gaussian", "sxy_bilateral",
                                                        "srgb_bilateral", "compat_bilateral"))
        _check(self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}")
        _check(0.0 < self.gt_prob < 1.0, f"gt_prob must be in (0, 1), got {self.gt_prob}")
        for k in ("sxy_gaussian", "compat_gaussian", "sxy_bilateral", "srgb_bilateral", "compat_bilateral"):
            _check(getattr(self, k) > 0, f"{k} must be > 0, got {getattr(self, k)}")


@dataclass(frozen=True)
class PseudoMaskConfig(_Config):
    """How CAMs become pseudo masks for the segmentation network."""

    threshold: float | None = None
    """Background score. ``None``: the best threshold of the seed sweep on the training set
    (the field's protocol, which peeks at training masks; see the chapter)."""
    bands: tuple[float, float] | None = None
    """``(low, high)``: confident background where the best tagged CAM is ``<= low``, confident
    foreground where it is ``> high``, ignore (255) between (the same tie rule as the seed
    threshold). IRN uses (0.05, 0.30). ``None``: no ignore band."""
    crf: bool = False
    """Refine with a dense CRF (IRN-style: CRF on each thresholded label map)."""
    crf_config: CRFConfig = field(default_factory=CRFConfig)

    def __post_init__(self) -> None:
        if self.threshold is not None:
            _numbers(self, reals=("threshold",))
        _check(self.threshold is None or 0.0 <= self.threshold <= 1.0,
               f"threshold must be None or in [0, 1], got {self.threshold}")
        if self.bands is not None:
            _check(len(self.bands) == 2 and 0.0 <= self.bands[0] < self.bands[1] <= 1.0,
                   f"bands must be (low, high) with 0 <= low < high <= 1, got {self.bands}")


@dataclass(frozen=True)
class PrototypeConfig(_Config):
    """Prototype CAM (SIPE, Chen et al. CVPR 2022): cosine similarity to image-specific prototypes."""

    levels: int = 4
    """How many of the backbone's last stages form the hierarchical feature (each L2-normalised,
    resized to the last stage's grid, concatenated). 4 = the four residual stages, as SIPE."""
    temperature: float = 0.1
    """Softmax temperature over [background, tagged classes] of the cosine scores; the seed
    threshold sweep then sweeps a margin between a class and the background."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("levels",), reals=("temperature",))
        _check(self.levels >= 1, f"PrototypeConfig.levels must be >= 1, got {self.levels}")
        _check(self.temperature > 0, f"PrototypeConfig.temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class C3Config(_Config):
    """Classifier/prototype mutual calibration (CPMC, TCSVT 2024); our reading, see the chapter."""

    refine: bool = True
    """Step 1: propagate the classifier CAM with a feature affinity before taking seeds."""
    refine_power: float = 8.0
    """Affinity ``ReLU(cos)^power`` between hierarchical features (row-normalised); 8 is the
    power AffinityNet (PSA, Ahn & Kwak CVPR 2018) raises its affinities to."""
    discrepancy_threshold: float = 0.5
    """Both maps are binarised at this value to find where they disagree."""
    min_region: int = 1
    """A discrepancy region needs at least this many feature cells to give a local prototype."""
    use_fn: bool = True
    """False-negative local prototypes join the class (completion)."""
    use_fp: bool = True
    """False-positive local prototypes join the background (suppression)."""
    loss_weight: float = 1.0
    """Weight of the L1 consistency loss next to the classification loss (0: train a plain classifier)."""
    certainty_weighting: bool = True
    """Weight each cell of the consistency loss by ``1 - H_2(target)`` (as C4 does). Our networks
    start from scratch, not from ImageNet as in the paper: early targets are near 0.5 everywhere,
    and an unweighted L1 towards them flattens the CAM for good (measured: seed mIoU 33 instead
    of 50 for the plain CAM). False: the plain L1."""
    output: str = "prototype"
    """What the method returns: the calibrated ``"prototype"`` CAM, the (refined) ``"classifier"``
    CAM, or their ``"mean"``."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("min_region",), reals=("refine_power", "discrepancy_threshold", "loss_weight"))
        _check(self.refine_power > 0, f"C3Config.refine_power must be > 0, got {self.refine_power}")
        _check(0 < self.discrepancy_threshold < 1,
               f"C3Config.discrepancy_threshold must be in (0, 1), got {self.discrepancy_threshold}")
        _check(self.min_region >= 1, f"C3Config.min_region must be >= 1, got {self.min_region}")
        _check(self.loss_weight >= 0, f"C3Config.loss_weight must be >= 0, got {self.loss_weight}")
        _check(self.output in ("prototype", "classifier", "mean"),
               f"C3Config.output must be 'prototype', 'classifier' or 'mean', got {self.output!r}")


@dataclass(frozen=True)
class C4Config(_Config):
    """Several prototypes per class through optimal transport (POT, CVPR 2025); our reading.

    Features are the hierarchical features of :class:`PrototypeConfig` (its ``levels`` and
    ``temperature`` apply)."""

    k: int = 4
    """Prototypes per class. The paper uses 2-4; 1 is SIPE's single prototype."""
    k_background: int = 1
    """Prototypes of the background (SIPE's one by default; K background prototypes also match
    the parts of objects that leak into the background seeds)."""
    scope: str = "image"
    """Where the prototypes come from: each image's own confident cells (``"image"``, as SIPE), or
    confident cells pooled over the whole training set (``"dataset"``: one fixed bank)."""
    epsilon: float = 0.05
    """Entropic regularisation of the Sinkhorn assignment (cost = 1 - cosine)."""
    assignment: str = "ot"
    """How k-means assigns features to prototypes: ``"ot"`` (balanced by Sinkhorn) or ``"nearest"``."""
    capacities: str = "weighted"
    """Prototype capacities of the transport: ``"uniform"`` (1/K each) or ``"weighted"`` (softmax over
    prototypes of the mean CAM score of the cells they hold, at ``capacity_temperature``):
    significant clusters get more mass (the paper's similarity-aware transport)."""
    capacity_temperature: float = 0.25
    """Seed cells have CAM scores in about [0.5, 1]; at 0.25 a prototype of score-1 cells gets at
    most e^2 = 7.4 times the mass of one of score-0.5 cells. Much lower temperatures let one
    prototype take nearly all the mass (the collapse the transport exists to prevent)."""
    kmeans_iters: int = 10
    loss_weight: float = 1.0
    """Weight of the entropy-weighted consistency loss (0: train a plain classifier)."""
    bank_per_class: int = 20000
    """``scope="dataset"``: at most this many confident training cells per class form the bank."""
    output: str = "prototype"
    """``"prototype"`` CAM, the ``"classifier"`` CAM, or their ``"mean"``."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("k", "k_background", "kmeans_iters", "bank_per_class"),
                 reals=("epsilon", "capacity_temperature", "loss_weight"))
        _check(1 <= self.k <= 16, f"C4Config.k must be in [1, 16], got {self.k}")
        _check(1 <= self.k_background <= 16, f"C4Config.k_background must be in [1, 16], got {self.k_background}")
        _check(self.scope in ("image", "dataset"), f"C4Config.scope must be 'image' or 'dataset', got {self.scope!r}")
        _check(self.epsilon > 0, f"C4Config.epsilon must be > 0, got {self.epsilon}")
        _check(self.assignment in ("ot", "nearest"), f"C4Config.assignment must be 'ot' or 'nearest', got {self.assignment!r}")
        _check(self.capacities in ("uniform", "weighted"),
               f"C4Config.capacities must be 'uniform' or 'weighted', got {self.capacities!r}")
        _check(self.capacity_temperature > 0, f"C4Config.capacity_temperature must be > 0, got {self.capacity_temperature}")
        _check(self.kmeans_iters >= 1, f"C4Config.kmeans_iters must be >= 1, got {self.kmeans_iters}")
        _check(self.loss_weight >= 0, f"C4Config.loss_weight must be >= 0, got {self.loss_weight}")
        _check(self.bank_per_class >= self.k, f"C4Config.bank_per_class must be >= k, got {self.bank_per_class}")
        _check(self.output in ("prototype", "classifier", "mean"),
               f"C4Config.output must be 'prototype', 'classifier' or 'mean', got {self.output!r}")


@dataclass(frozen=True)
class ViTConfig(_Config):
    """A Vision Transformer classifier from timm with one class token per class (MCTformer-style).

    ``backbone`` names a timm ViT architecture; ``patch_size``, ``embed_dim``, ``depth`` and
    ``num_heads`` override it (``None``: the architecture's own). With ``pretrained`` the
    architecture must stay as published (only ``img_size`` may change: timm resamples the
    position embedding), and the single pretrained class token initialises every class token."""

    backbone: str = "vit_tiny_patch16_224"
    img_size: int = 64
    """Training image size; other sizes work at inference (the position embedding is resampled)."""
    patch_size: int | None = 8
    """8 px patches on 64 px images give an 8 x 8 token grid, the CNN track's CAM resolution."""
    embed_dim: int | None = 128
    depth: int | None = 4
    num_heads: int | None = 4
    pretrained: bool = False
    pretrained_file: str | None = None
    """Local weights file for ``pretrained`` (offline machines), as in :class:`ModelConfig`."""
    drop_path_rate: float = 0.0
    pooling: str = "max"
    """How the patch-token scores are pooled into the image score: ``"max"`` (global max pooling,
    as ToCo) or ``"avg"`` (GAP, as the CNN track and MCTformer-V2). Trained from scratch, GAP lets
    every token carry every class (global attention) and its patch-token CAM covers the whole
    image (measured: seed mIoU 17 against 37 with max pooling, first 300 training images)."""

    def __post_init__(self) -> None:
        _check(self.pooling in ("avg", "max"), f"ViTConfig.pooling must be 'avg' or 'max', got {self.pooling!r}")
        _numbers(self, integers=("img_size", "patch_size", "embed_dim", "depth", "num_heads"),
                 reals=("drop_path_rate",))
        _check(isinstance(self.backbone, str) and self.backbone.startswith(("vit_", "deit_")),
               f"ViTConfig.backbone must name a timm ViT (vit_* or deit_*), got {self.backbone!r}")
        _check(self.img_size >= 8, f"ViTConfig.img_size must be >= 8, got {self.img_size}")
        for k in ("patch_size", "embed_dim", "depth", "num_heads"):
            v = getattr(self, k)
            _check(v is None or v >= 1, f"ViTConfig.{k} must be None or >= 1, got {v}")
        if self.patch_size is not None:
            _check(self.img_size % self.patch_size == 0,
                   f"ViTConfig.img_size {self.img_size} must be a multiple of patch_size {self.patch_size}")
        if self.embed_dim is not None and self.num_heads is not None:
            _check(self.embed_dim % self.num_heads == 0,
                   f"ViTConfig.embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        _check(0 <= self.drop_path_rate < 1, f"ViTConfig.drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        _check(self.pretrained_file is None or self.pretrained,
               "ViTConfig.pretrained_file is given but pretrained=False; set pretrained=True to use it")
        if self.pretrained:
            changed = [k for k in ("patch_size", "embed_dim", "depth", "num_heads") if getattr(self, k) is not None]
            _check(not changed, f"ViTConfig: pretrained weights fix the architecture; set {changed} to None "
                                f"(or pretrained=False to train this configuration from scratch)")


@dataclass(frozen=True)
class AttentionConfig(_Config):
    """Class-token attention maps of a :class:`ViTConfig` classifier (the ``vit_attn`` baseline)."""

    layers: int = 1
    """Average the class-to-patch attention of the last ``layers`` blocks (1: the last block only;
    MCTformer fuses several). Ignored with ``rollout``."""
    rollout: bool = False
    """Attention rollout (Abnar & Zuidema 2020): the product over all blocks of
    ``0.5 A + 0.5 I`` (head-averaged, rows renormalised), which follows attention through the
    residual connections."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("layers",))
        _check(self.layers >= 1, f"AttentionConfig.layers must be >= 1, got {self.layers}")


@dataclass(frozen=True)
class C5Config(_Config):
    """Class token as proxy, OT-assisted (OTPL, ICCV 2025); our reading, see the chapter."""

    mix: float = 0.5
    """Proxy = normalise(mix * class token + (1 - mix) * OT-weighted mean of patch tokens), both
    unit vectors. 1: the class token alone (the token gap); 0: the patch tokens alone."""
    assignment: str = "ot"
    """Which patch tokens join a proxy: ``"ot"`` (the transport plan's row for the class) or
    ``"topk"`` (the ablation without OT in the proxy: mean of the ``topk`` tokens most similar to
    the class token). The contrastive loss takes its confident tokens from the plan either way."""
    topk: int = 8
    epsilon: float = 0.05
    """Entropic regularisation of the plan (cost = 1 - cosine)."""
    capacities: str = "cam"
    """Mass of each proxy in the plan: ``"cam"`` (proportional to the class's patch-token CAM mass;
    the background gets the mass of ``1 - max CAM``) or ``"uniform"`` (1 / (tags + 1) each)."""
    background_fraction: float = 0.3
    """The background proxy is the mean of this fraction of patch tokens with the lowest CAM."""
    confidence: float = 0.7
    """A patch token is a confident member of a proxy when the plan gives that proxy at least this
    share of the token's mass (and no other proxy more)."""
    loss_weight: float = 0.1
    """Weight of the OT-enhanced contrastive loss next to the two classification losses (0: train
    the plain ViT classifier)."""
    temperature: float = 0.1
    """InfoNCE temperature of the contrastive loss."""
    sinkhorn_iters: int = 50

    def __post_init__(self) -> None:
        _numbers(self, integers=("topk", "sinkhorn_iters"),
                 reals=("mix", "epsilon", "background_fraction", "confidence", "loss_weight", "temperature"))
        _check(0 <= self.mix <= 1, f"C5Config.mix must be in [0, 1], got {self.mix}")
        _check(self.assignment in ("ot", "topk"), f"C5Config.assignment must be 'ot' or 'topk', got {self.assignment!r}")
        _check(self.topk >= 1, f"C5Config.topk must be >= 1, got {self.topk}")
        _check(self.epsilon > 0, f"C5Config.epsilon must be > 0, got {self.epsilon}")
        _check(self.capacities in ("cam", "uniform"),
               f"C5Config.capacities must be 'cam' or 'uniform', got {self.capacities!r}")
        _check(0 < self.background_fraction < 1,
               f"C5Config.background_fraction must be in (0, 1), got {self.background_fraction}")
        _check(0 < self.confidence <= 1, f"C5Config.confidence must be in (0, 1], got {self.confidence}")
        _check(self.loss_weight >= 0, f"C5Config.loss_weight must be >= 0, got {self.loss_weight}")
        _check(self.temperature > 0, f"C5Config.temperature must be > 0, got {self.temperature}")
        _check(self.sinkhorn_iters >= 1, f"C5Config.sinkhorn_iters must be >= 1, got {self.sinkhorn_iters}")


@dataclass(frozen=True)
class TinySAMConfig(_Config):
    """A SAM small enough for a 2-core CPU, built from segment-anything's own modules
    (:mod:`s2d_core.models.promptable`) and pre-trained class-agnostically on the object world
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

    def __post_init__(self) -> None:
        _numbers(self, integers=("img_size", "patch_size", "embed_dim", "depth", "num_heads", "prompt_dim",
                                 "decoder_depth", "decoder_mlp_dim", "decoder_heads", "n_scenes", "steps",
                                 "batch_size"), reals=("lr", "weight_decay"))
        _check(self.img_size >= 32 and self.img_size % self.patch_size == 0,
               f"TinySAMConfig.img_size must be >= 32 and a multiple of patch_size={self.patch_size}, got {self.img_size}")
        _check(self.embed_dim % self.num_heads == 0,
               f"TinySAMConfig.embed_dim={self.embed_dim} must be divisible by num_heads={self.num_heads}")
        _check(self.prompt_dim % 8 == 0 and (self.prompt_dim // 2) % self.decoder_heads == 0,
               f"TinySAMConfig.prompt_dim must be a multiple of 8, and prompt_dim / 2 a multiple of "
               f"decoder_heads={self.decoder_heads} (the decoder's cross-attention halves the width), got {self.prompt_dim}")
        _check(min(self.depth, self.decoder_depth, self.n_scenes, self.steps, self.batch_size) >= 1,
               "TinySAMConfig: depth, decoder_depth, n_scenes, steps and batch_size must be >= 1")
        _check(self.lr > 0 and self.weight_decay >= 0, "TinySAMConfig: lr must be > 0 and weight_decay >= 0")


C6_STRATEGIES = ("spectral", "peak", "random", "kmeans", "box")
C6_SEGMENTERS = ("tiny_sam", "random_walker", "sam")


@dataclass(frozen=True)
class C6Config(_Config):
    """Spectral prompts for a promptable segmenter (C6), and the baselines' prompts."""

    strategy: str = "spectral"
    """How prompts are chosen from a class's CAM: ``spectral`` (graph clusters, one point each),
    ``peak`` (the CAM maximum, S2C-style), ``random`` (``n_points`` foreground points),
    ``kmeans`` (``n_points`` clusters of features + position, no graph), ``box`` (the box around
    the CAM foreground)."""
    segmenter: str = "tiny_sam"
    """Who answers the prompts: ``tiny_sam`` (the cached tiny SAM through ``SamPredictor``),
    ``sam`` (a real SAM checkpoint: ``sam_checkpoint``), ``random_walker`` (classical baseline)."""
    sam_model_type: str = "vit_b"
    sam_checkpoint: str | None = None
    """Path of a SAM checkpoint (``sam_vit_b_01ec64.pth`` etc.) for ``segmenter="sam"``."""
    features: str = "segmenter"
    """Node features of the graph: ``segmenter`` (the SAM's image embedding; the tiny SAM's for
    the random walker, so both segmenters get the same prompts) or ``image`` (pixel colours)."""
    graph_size: int = 32
    """The CAM is pooled to a ``graph_size`` x ``graph_size`` grid; its foreground cells are the nodes."""
    knn: int = 8
    """Edges kept per node (the strongest within ``radius`` cells), then symmetrised."""
    radius: int = 3
    feature_sigma: float = 0.1
    """Feature affinity ``exp(-(1 - cos) / feature_sigma)``."""
    spatial_sigma: float = 2.0
    """Spatial affinity ``exp(-d^2 / (2 spatial_sigma^2))``, ``d`` in grid cells."""
    k_max: int = 4
    """Upper bound of the number of clusters (the eigengap picks k in 1..k_max)."""
    eigengap_ratio: float = 0.2
    """A gap after the k-th eigenvalue counts when ``lambda_k <= eigengap_ratio * lambda_{k+1}``."""
    point: str = "central"
    """One point per cluster: ``central`` (deepest inside the cluster) or ``peak`` (highest CAM)."""
    negatives: int = 0
    """Negative points per class, from confident background (max CAM below ``negative_threshold``)
    next to the class's foreground."""
    negative_threshold: float = 0.05
    n_points: int = 3
    """Points of the ``random`` and ``kmeans`` baselines."""
    min_cluster: int = 3
    """Graph components smaller than this (in cells) get no prompt (CAM speckle)."""
    min_agreement: float = 0.1
    """A candidate mask is kept only if its IoU with the CAM foreground is at least this (an answer
    about something else, e.g. the whole image, is dropped)."""
    rw_beta: float = 130.0
    """Edge sharpness of the random walker (scikit-image's default)."""

    def __post_init__(self) -> None:
        _numbers(self, integers=("graph_size", "knn", "radius", "k_max", "negatives", "n_points", "min_cluster"),
                 reals=("feature_sigma", "spatial_sigma", "negative_threshold", "rw_beta", "eigengap_ratio", "min_agreement"))
        _check(0 <= self.min_agreement < 1, f"C6Config.min_agreement must be in [0, 1), got {self.min_agreement}")
        _check(0 < self.eigengap_ratio < 1, f"C6Config.eigengap_ratio must be in (0, 1), got {self.eigengap_ratio}")
        _check(self.strategy in C6_STRATEGIES, f"C6Config.strategy must be one of {C6_STRATEGIES}, got {self.strategy!r}")
        _check(self.segmenter in C6_SEGMENTERS, f"C6Config.segmenter must be one of {C6_SEGMENTERS}, got {self.segmenter!r}")
        _check(self.sam_model_type in ("vit_b", "vit_l", "vit_h"),
               f"C6Config.sam_model_type must be 'vit_b', 'vit_l' or 'vit_h', got {self.sam_model_type!r}")
        _check(self.segmenter != "sam" or self.sam_checkpoint,
               "C6Config.segmenter='sam' needs sam_checkpoint=<path to sam_vit_b_01ec64.pth or similar>")
        _check(self.features in ("segmenter", "image"), f"C6Config.features must be 'segmenter' or 'image', got {self.features!r}")
        _check(self.graph_size >= 4, f"C6Config.graph_size must be >= 4, got {self.graph_size}")
        _check(self.knn >= 1 and self.radius >= 1, "C6Config.knn and radius must be >= 1")
        _check(self.feature_sigma > 0 and self.spatial_sigma > 0, "C6Config.feature_sigma and spatial_sigma must be > 0")
        _check(1 <= self.k_max <= 16, f"C6Config.k_max must be in [1, 16], got {self.k_max}")
        _check(self.point in ("central", "peak"), f"C6Config.point must be 'central' or 'peak', got {self.point!r}")
        _check(self.negatives >= 0 and self.n_points >= 1 and self.min_cluster >= 1,
               "C6Config: negatives >= 0, n_points >= 1 and min_cluster >= 1")
        _check(0 <= self.negative_threshold < 1, f"C6Config.negative_threshold must be in [0, 1), got {self.negative_threshold}")
        _check(self.rw_beta > 0, f"C6Config.rw_beta must be > 0, got {self.rw_beta}")


@dataclass(frozen=True)
class PipelineConfig(_Config):
    """Everything after the data: classifier, CAM, pseudo masks, segmenter."""

    classifier: ModelConfig = field(default_factory=ModelConfig)
    classifier_train: TrainConfig = field(default_factory=TrainConfig)
    cam: CAMConfig = field(default_factory=CAMConfig)
    pseudo: PseudoMaskConfig = field(default_factory=PseudoMaskConfig)
    segmenter: ModelConfig = field(default_factory=ModelConfig)
    segmenter_train: TrainConfig = field(default_factory=TrainConfig)
    prototype: PrototypeConfig = field(default_factory=PrototypeConfig)
    """Used by the prototype methods (``proto``, ``c3``, ``c4``)."""
    c3: C3Config = field(default_factory=C3Config)
    c4: C4Config = field(default_factory=C4Config)
    vit: ViTConfig = field(default_factory=ViTConfig)
    """The Vision Transformer classifier of the ViT track (``vit_cam``, ``vit_attn``, ``c5``)."""
    vit_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, lr=1e-3, weight_decay=0.05))
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    c5: C5Config = field(default_factory=C5Config)
    tiny_sam: TinySAMConfig = field(default_factory=TinySAMConfig)
    c6: C6Config = field(default_factory=C6Config)


_SUBCONFIGS: dict[tuple[str, str], type] = {
    ("PseudoMaskConfig", "crf_config"): CRFConfig,
    ("PipelineConfig", "classifier"): ModelConfig,
    ("PipelineConfig", "segmenter"): ModelConfig,
    ("PipelineConfig", "classifier_train"): TrainConfig,
    ("PipelineConfig", "segmenter_train"): TrainConfig,
    ("PipelineConfig", "cam"): CAMConfig,
    ("PipelineConfig", "pseudo"): PseudoMaskConfig,
    ("PipelineConfig", "prototype"): PrototypeConfig,
    ("PipelineConfig", "c3"): C3Config,
    ("PipelineConfig", "c4"): C4Config,
    ("PipelineConfig", "vit"): ViTConfig,
    ("PipelineConfig", "vit_train"): TrainConfig,
    ("PipelineConfig", "attention"): AttentionConfig,
    ("PipelineConfig", "c5"): C5Config,
    ("PipelineConfig", "tiny_sam"): TinySAMConfig,
    ("PipelineConfig", "c6"): C6Config,
}
