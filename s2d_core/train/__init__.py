"""Training: the generic seeded, resumable loop, and the tiny SAM's class-agnostic pre-training.

Trained networks as cached artifacts (train on demand, load afterwards) are the pipeline's
job: :mod:`s2d_core.pipeline.artifacts`.
"""

from .config import TrainConfig
from .loops import WithMasks, fit, predict_masks
from .promptable import pretrain_tiny_sam, prompt_batch

__all__ = ["TrainConfig", "WithMasks", "fit", "predict_masks", "pretrain_tiny_sam", "prompt_batch"]
