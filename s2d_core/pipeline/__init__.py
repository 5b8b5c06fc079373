"""Orchestration above the stage map: train on demand, cache, and run method X on data Y.

The stages (data -> models -> cam -> densify -> pseudo -> train -> eval) only import the
stages before them; this layer imports them all:

* :mod:`.artifacts`: cached trained networks, maps and the tiny SAM (``get_classifier``, ...);
* :mod:`.methods`: the method registry's front door (``list_methods``, ``build_method``);
* :mod:`.run`: the whole pipeline of one benchmark run, stage by stage (``PipelineRun``);
* :mod:`.pretrained` and :mod:`.shipping`: backbones pre-trained on the pretraining world, shipped
  or built on demand (``pretrained_weights``, ``with_init``);
* :mod:`.config` and :mod:`.presets`: ``PipelineConfig`` and its named values.
"""

from .artifacts import (RECIPES, dataset_id, describe, get_cams, get_classifier, get_segmenter, get_tiny_sam,
                        get_video_saliency, masks_digest, state_dict_sha256)
from .config import PipelineConfig
from .methods import (build_method, enhancer_table, get_enhancer, get_method, list_enhancers, list_methods,
                      make_predictor, method_table)
from .presets import PIPELINES, get_pipeline
from .pretrained import pretrained_weights, with_init
from .run import PARAMETERS, PipelineRun, run_config, validate_params

__all__ = ["PARAMETERS", "PIPELINES", "RECIPES", "PipelineConfig", "PipelineRun", "build_method", "dataset_id",
           "describe", "enhancer_table", "get_cams", "get_classifier", "get_enhancer", "get_method", "get_pipeline",
           "get_segmenter", "get_tiny_sam", "get_video_saliency", "list_enhancers", "list_methods", "make_predictor", "masks_digest",
           "method_table", "pretrained_weights", "run_config", "state_dict_sha256", "validate_params", "with_init"]
