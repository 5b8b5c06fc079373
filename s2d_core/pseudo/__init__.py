"""Pseudo labels: CAM -> (bands, CRF) -> masks the segmentation network learns from."""

from .crf import crf_labels, crf_probs
from .masks import IGNORE, label_coverage, make_pseudo_masks, pseudo_mask

__all__ = ["IGNORE", "crf_labels", "crf_probs", "label_coverage", "make_pseudo_masks", "pseudo_mask"]
