"""The whole pipeline's configuration: one field per stage, each a stage's own dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cam.config import AttentionConfig, CAMConfig
from ..configbase import Config
from ..densify.config import C3Config, C4Config, C5Config, PrototypeConfig
from ..models.config import ModelConfig, TinySAMConfig, ViTConfig
from ..pseudo.config import C6Config, PseudoMaskConfig
from ..train.config import PretrainConfig, TrainConfig

__all__ = ["PipelineConfig"]


@dataclass(frozen=True)
class PipelineConfig(Config):
    """Everything after the data: classifiers, map read-outs, densifiers, pseudo masks, segmenter.

    ``from_dict`` builds the nested configurations from these type hints; named values are in
    :mod:`s2d_core.presets` (``get_pipeline("cpu")``).
    """

    pretraining: PretrainConfig = field(default_factory=PretrainConfig)
    """How a backbone with ``init="synthetic"`` was pre-trained (the pretraining world and schedule)."""
    classifier: ModelConfig = field(default_factory=lambda: ModelConfig(init="synthetic"))
    classifier_train: TrainConfig = field(default_factory=TrainConfig)
    cam: CAMConfig = field(default_factory=CAMConfig)
    pseudo: PseudoMaskConfig = field(default_factory=PseudoMaskConfig)
    segmenter: ModelConfig = field(default_factory=lambda: ModelConfig(init="synthetic"))
    segmenter_train: TrainConfig = field(default_factory=TrainConfig)
    prototype: PrototypeConfig = field(default_factory=PrototypeConfig)
    """Used by the prototype methods (``prototype_cam``, ``mutual_calibration``, ``multi_prototype_ot``)."""
    c3: C3Config = field(default_factory=C3Config)
    """``mutual_calibration`` (C3)."""
    c4: C4Config = field(default_factory=C4Config)
    """``multi_prototype_ot`` (C4)."""
    vit: ViTConfig = field(default_factory=ViTConfig)
    """The Vision Transformer classifier of the ViT track (``patch_token_cam``, ``class_token_attention``, ``ot_proxy``)."""
    vit_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, lr=1e-3, weight_decay=0.05))
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    c5: C5Config = field(default_factory=C5Config)
    """``ot_proxy`` (C5)."""
    tiny_sam: TinySAMConfig = field(default_factory=TinySAMConfig)
    c6: C6Config = field(default_factory=C6Config)
    """The prompt enhancers (C6, ``spectral_prompts`` and its baselines)."""
