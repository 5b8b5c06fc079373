"""Training: the generic loop and the cached artifacts (classifier, CAMs, segmenter)."""

from .artifacts import (dataset_id, describe, get_cams, get_classifier, get_segmenter, get_tiny_sam, get_vit_classifier,
                        masks_digest,
                        resolve_device)
from .loops import WithMasks, fit, predict_masks

__all__ = ["WithMasks", "dataset_id", "describe", "fit", "get_cams", "get_classifier", "get_segmenter", "get_tiny_sam", "get_vit_classifier",
           "masks_digest", "predict_masks", "resolve_device"]
