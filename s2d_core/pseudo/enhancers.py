"""Enhancers: steps that turn *any* method's maps into better pseudo masks, and their registry.

A map method answers "roughly where is each class?"; an enhancer sits between its maps and the
pseudo masks and can be put behind every method (``<method> + <enhancer>``). C6 is one: it asks
a promptable segmenter (SAM) with prompts chosen from the maps (:mod:`.prompted`). Each prompt
strategy is registered under a name that says what it does, with the thesis label and the
runner's short names as aliases::

    ENHANCERS.get("c6")             # EnhancerSpec(name="spectral_prompts", ...)
    ENHANCERS.names()               # spectral_prompts, peak_prompt, random_prompts, kmeans_prompts, box_prompt

``spec.mask(predictor, item, cam, threshold, cfg, feature_predictor=None, rng=None)`` gives one
image's pseudo mask; the pipeline (:mod:`s2d_core.pipeline`) builds the predictor and runs a split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..registry import Registry

__all__ = ["ENHANCERS", "EnhancerSpec", "register_enhancer"]


@dataclass(frozen=True)
class EnhancerSpec:
    """A registered enhancer: what it does and how it makes one image's pseudo mask."""

    name: str
    summary: str
    mask: Callable[..., np.ndarray]
    """``mask(predictor, item, cam, threshold, cfg, feature_predictor=None, rng=None) -> (H, W) uint8``;
    ``item`` a data-set item, ``cam`` its (C, H, W) map, ``cfg`` the :class:`~s2d_core.pseudo.config.C6Config`."""
    strategy: str | None = None
    """The prompt strategy (:data:`~s2d_core.pseudo.config.PROMPT_STRATEGIES`) of a C6 enhancer."""
    label: str | None = None
    paper: str | None = None
    aliases: tuple[str, ...] = ()
    record_name: str | None = None
    """The value of the benchmark runner's ``c6`` parameter that records were made with."""
    module: str = field(default="", compare=False)


ENHANCERS: Registry[EnhancerSpec] = Registry("enhancer", hint="import s2d_core.pseudo to register C6's prompt strategies")
"""Every enhancer, by name; :func:`s2d_core.pipeline.list_enhancers` lists them."""


def register_enhancer(name: str, summary: str, mask: Callable[..., np.ndarray], *, aliases: tuple[str, ...] = (),
                      module: str = "", **kwargs) -> EnhancerSpec:
    """Register an enhancer (see :class:`EnhancerSpec`) under ``name`` and ``aliases``."""
    spec = EnhancerSpec(name=name, summary=summary, mask=mask, aliases=tuple(aliases), module=module, **kwargs)
    return ENHANCERS.register(name, spec, aliases)
