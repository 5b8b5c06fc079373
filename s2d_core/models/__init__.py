"""Models: timm backbones, the CAM classifier, the ViT classifier, the segmentation network, SAM.

Training objectives share one protocol (:mod:`.objective`): ``loss = objective(model, batch)``.
"""

from .backbones import PretrainedWeightsError, create_backbone, feature_channels, last_stage
from .classifier import Classifier
from .config import ModelConfig, TinySAMConfig, ViTConfig
from .objective import MaskLoss, Objective, TagLoss, ViTTagLoss
from .segmenter import Segmenter
from .vit import ViTClassifier

__all__ = ["Classifier", "MaskLoss", "ModelConfig", "Objective", "PretrainedWeightsError", "Segmenter", "TagLoss",
           "TinySAMConfig", "ViTClassifier", "ViTConfig", "ViTTagLoss", "create_backbone", "feature_channels",
           "last_stage"]
