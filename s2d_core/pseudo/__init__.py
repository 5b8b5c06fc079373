"""Pseudo labels: maps -> (bands, CRF, or a promptable segmenter asked by C6) -> masks to train on.

* :mod:`.masks`: the seed rule (threshold), confidence bands, label coverage;
* :mod:`.crf`: dense CRF refinement;
* :mod:`.prompts` and :mod:`.prompted`: C6, prompts for a promptable segmenter chosen from a
  CAM, registered as enhancers (:data:`ENHANCERS`) that compose with any map method.
"""

from .config import PROMPT_STRATEGIES, SEGMENTERS, C6Config, CRFConfig, PseudoMaskConfig
from .crf import crf_labels, crf_probs
from .enhancers import ENHANCERS, EnhancerSpec, register_enhancer
from .masks import IGNORE, label_coverage, make_pseudo_masks, pseudo_mask, seeds_from_cam
from .prompted import c6_mask_of, c6_pseudo_mask, make_c6_masks
from .prompts import Prompts, select_prompts

__all__ = ["ENHANCERS", "IGNORE", "PROMPT_STRATEGIES", "SEGMENTERS", "C6Config", "CRFConfig", "EnhancerSpec",
           "Prompts", "PseudoMaskConfig", "c6_mask_of", "c6_pseudo_mask", "crf_labels", "crf_probs", "label_coverage",
           "make_c6_masks", "make_pseudo_masks", "pseudo_mask", "register_enhancer", "seeds_from_cam", "select_prompts"]
