"""The parameters of a benchmark run, and the run's id.

The parameters and their checks are the pipeline's own (:data:`s2d_core.pipeline.PARAMETERS`,
:func:`~s2d_core.pipeline.validate_params`, :func:`~s2d_core.pipeline.run_config`): a suite
file, the runner and the run notebook all speak them. This module adds what only the runner
needs: :func:`run_id`, the name of a run's record. Ids of committed records must never change
(``tests/test_runner.py`` checks every one), so a method or enhancer is named in the id by the
name its records were made under (``c3`` for ``mutual_calibration``, ``spectral`` for
``spectral_prompts``), whichever of its names or aliases a suite uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from s2d_core.cam.base import METHODS
from s2d_core.data.presets import VIDEO_PRESETS
from s2d_core.pipeline import PARAMETERS, run_config, validate_params
from s2d_core.pipeline.run import INIT_BEFORE, LATER_PARAMETERS, resolved_init
from s2d_core.pipeline.spml import SPML_PARAMETERS, spml_config, validate_spml_params
from s2d_core.pipeline.video import VIDEO_PARAMETERS, validate_video_params, video_run_config
from s2d_core.pseudo.enhancers import ENHANCERS

__all__ = ["KINDS", "PARAMETERS", "RunKind", "canonical_method", "kind_of", "record_enhancer", "record_names",
           "run_config", "run_id", "spml_run_id", "validate_params", "video_run_id"]


def canonical_method(name: str) -> str:
    """The registry name of a method given by any of its names (unknown names are returned as given)."""
    return METHODS.canonical(name) if name in METHODS else name


def record_enhancer(name: str) -> str:
    """The name records use for an enhancer given by any of its names (``spectral`` for
    ``spectral_prompts`` or ``c6``); ``"none"`` and unknown names are returned as given."""
    if name == "none" or name not in ENHANCERS:
        return name
    spec = ENHANCERS.get(name)
    return spec.record_name or spec.name


def record_names(params: dict) -> dict:
    """``params`` with the method and the enhancer under the names their records were made with."""
    p = dict(params)
    if p.get("method") in METHODS:
        spec = METHODS.get(p["method"])
        p["method"] = spec.record_name or spec.name
    if "c6" in p:
        p["c6"] = record_enhancer(p["c6"])
    return p


def run_id(params: dict) -> str:
    """A readable, unique file name for a parameter set.

    ``init`` enters as the run resolves it (the preset's when the parameter is None), so a preset
    that changes how its networks start gives new ids; ``scratch``, how every run started before
    the setting existed, is left out, so the committed records keep their ids."""
    p = record_names({**PARAMETERS, **params})
    try:
        p["init"] = resolved_init(params)
    except ValueError:  # a parameter set that cannot run (it fails with its reason when it is run)
        p["init"] = params.get("init") or "invalid"
    hashed = {k: v for k, v in p.items()
              if not (k in LATER_PARAMETERS and v == (INIT_BEFORE if k == "init" else PARAMETERS[k]))}
    if hashed.get("sam_checkpoint"):  # the file, not where it lives: moving it keeps the records
        hashed["sam_checkpoint"] = Path(str(hashed["sam_checkpoint"])).name
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    parts = [p["dataset"] if p["dataset"] != "synthetic" else p["preset"], p["method"]]
    if p["refine"] != "none":
        parts.append(p["refine"])
    if p["c6"] != "none":
        parts.append(f"c6{p['c6']}-{p['c6_segmenter']}")
    if not p["final"]:
        parts.append("pseudo")
    if p["backbone"]:
        parts.append(str(p["backbone"]))
    if p["init"] != INIT_BEFORE:
        parts.append(p["init"])
    parts.append(f"seed{p['seed']}")
    return "-".join(parts) + "-" + digest


def video_run_id(params: dict) -> str:
    """The record name of a video run: ``[<dataset>-]<preset>-<method>-<init>-seed<seed>-<hash>`` (the
    dataset named for real data only). The hash covers
    the parameters, the resolved configuration (schedule, network, init), the synthetic world's knobs
    and the recipe versions of the world and the network, so a changed preset or world gives new
    runs instead of skipped ones."""
    from s2d_core.pipeline import RECIPES

    p = {**VIDEO_PARAMETERS, **params}
    try:
        cfg = video_run_config(p, check_machine=False).to_dict()  # the same id with or without the data here
        init = cfg["model"]["encoder"]["init"]
    except ValueError:  # a parameter set that cannot run (it fails with its reason when it is run)
        cfg, init = None, p["init"] or "invalid"
    world = VIDEO_PRESETS[p["preset"]].to_dict() if p["dataset"] == "synthetic" and p["preset"] in VIDEO_PRESETS else None
    hashed = {**p, "config": cfg, "world": world,
              "recipes": {k: RECIPES[k] for k in ("video-world", "video-saliency")}}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    data = [] if p["dataset"] == "synthetic" else [str(p["dataset"])]
    return "-".join([*data, p["preset"], p["method"], init, f"seed{p['seed']}"]) + "-" + digest


def spml_run_id(params: dict) -> str:
    """The record name of an SPML run: ``<preset>-<method>-<kind>-seed<seed>-<hash>`` (the hash covers
    the parameters, SPML's and the pipeline preset's configurations, the read-out's version and the
    recipes of the networks and data involved)."""
    from s2d_core.pipeline import RECIPES

    from s2d_core.pipeline import get_pipeline
    from s2d_core.pipeline.spml import READOUT_VERSION

    p = {**SPML_PARAMETERS, **params}
    try:
        pipeline = get_pipeline(p["preset"]).to_dict()
    except ValueError:  # a parameter set that cannot run (it fails with its reason when it is run)
        pipeline = None
    hashed = {**p, "config": spml_config(p["preset"]).to_dict(), "pipeline": pipeline, "readout": READOUT_VERSION,
              "recipes": {k: RECIPES[k] for k in ("spml-embedding", "segmenter", "synthetic-split", "classifier",
                                                  "cams")}}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return "-".join([p["preset"], p["method"], p["kind"], f"seed{p['seed']}"]) + "-" + digest


@dataclass(frozen=True)
class RunKind:
    """What a suite's notebook runs: its parameters (with defaults), their check, and a run's id."""

    parameters: dict
    validate: Callable[[dict], None]
    run_id: Callable[[dict], str]


#: The run notebooks (``benchmarks/notebooks/<name>.md``) and what each expects.
KINDS: dict[str, RunKind] = {
    "cam_pipeline": RunKind(PARAMETERS, validate_params, run_id),
    "video_saliency": RunKind(VIDEO_PARAMETERS, validate_video_params, video_run_id),
    "spml": RunKind(SPML_PARAMETERS, validate_spml_params, spml_run_id),
}


def kind_of(notebook: str | Path) -> RunKind:
    """The :class:`RunKind` of a run notebook (by name or path)."""
    name = Path(notebook).stem
    if name not in KINDS:
        raise ValueError(f"no run kind for notebook {name!r}: expected one of {sorted(KINDS)}")
    return KINDS[name]
