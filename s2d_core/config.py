"""Every configuration dataclass, in one namespace.

Each configuration lives next to the stage it configures (``s2d_core/<stage>/config.py``) and is
re-exported here for convenience: ``from s2d_core.config import C4Config, PipelineConfig``.
Stage modules import their own stage's configuration, never this module (it sits above them
all). The values of each named preset are in :mod:`s2d_core.presets`.
"""

from .cam.config import AttentionConfig, CAMConfig
from .configbase import Config
from .data.config import PretrainWorldConfig, SyntheticConfig
from .densify.config import C3Config, C4Config, C5Config, PrototypeConfig
from .models.config import ModelConfig, TinySAMConfig, ViTConfig
from .pipeline.config import PipelineConfig
from .pseudo.config import PROMPT_STRATEGIES, SEGMENTERS, C6Config, CRFConfig, PseudoMaskConfig
from .train.config import PretrainConfig, TrainConfig

C6_STRATEGIES, C6_SEGMENTERS = PROMPT_STRATEGIES, SEGMENTERS  # the names earlier code used

__all__ = ["AttentionConfig", "C3Config", "C4Config", "C5Config", "C6Config", "C6_SEGMENTERS", "C6_STRATEGIES", "CAMConfig", "CRFConfig",
           "Config", "ModelConfig", "PROMPT_STRATEGIES", "PipelineConfig", "PretrainConfig", "PretrainWorldConfig",
           "PrototypeConfig", "PseudoMaskConfig",
           "SEGMENTERS", "SyntheticConfig", "TinySAMConfig", "TrainConfig", "ViTConfig"]
