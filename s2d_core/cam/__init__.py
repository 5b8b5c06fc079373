"""Class activation maps: the first, coarse answer to "where is the class?".

:class:`MapMethod` is the one interface of every map method (``method(batch) -> (B, C, H, W)``);
:class:`CAM` is the baseline; :mod:`.attention` reads a ViT's class-token attention.
"""

from .base import (METHODS, MapMethod, MethodSpec, compute_cams, max_normalise, register_method, restrict_to_tags,
                   scale_flip_average)
from .cam import CAM, cam_from_features  # noqa: I001 - registers the baselines before the attention maps
from .attention import ClassTokenAttention, class_attention_maps, rollout
from .config import AttentionConfig, CAMConfig

__all__ = ["CAM", "METHODS", "AttentionConfig", "CAMConfig", "ClassTokenAttention", "MapMethod", "MethodSpec",
           "cam_from_features", "class_attention_maps", "compute_cams", "max_normalise", "register_method",
           "restrict_to_tags", "rollout", "scale_flip_average"]
