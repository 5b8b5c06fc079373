"""Models: timm backbones, the CAM classifier, and the segmentation network."""

from .backbones import PretrainedWeightsError, create_backbone, feature_channels, last_stage
from .classifier import Classifier
from .segmenter import Segmenter

__all__ = ["Classifier", "PretrainedWeightsError", "Segmenter", "create_backbone", "feature_channels", "last_stage"]
