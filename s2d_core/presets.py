"""Every named preset, in one namespace: ``get_preset("cpu")`` (the synthetic world) and
``get_pipeline("cpu")`` (models, training and methods).

The values are defined once each, next to the stage that uses them: the worlds in
:mod:`s2d_core.data.presets` (the data stage must not import the stages after it), the pipeline
presets in :mod:`s2d_core.pipeline.presets`.
"""

from .data.presets import PRESETS, get_preset
from .pipeline.presets import PIPELINES, get_pipeline

__all__ = ["PIPELINES", "PRESETS", "get_pipeline", "get_preset"]
