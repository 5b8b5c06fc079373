"""Suites: a YAML file in ``benchmarks/suites/`` expanded into the parameter sets of its runs.

:func:`load_suite` reads a suite, checks its keys, its notebook and every run's parameters,
and returns a :class:`Suite`. The folders every benchmark module shares are named here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .params import kind_of

HERE = Path(__file__).resolve().parent
SUITES_DIR = HERE / "suites"
NOTEBOOKS_DIR = HERE / "notebooks"
RECORDS_DIR = HERE / "records"
LOGS_DIR = HERE.parent / "results"


class SuiteError(ValueError):
    """A suite file that cannot be run as written."""


@dataclass
class Suite:
    name: str
    notebook: Path
    runs: list[dict]
    group_by: list[str]
    description: str = ""
    path: Path | None = None
    extra: dict = field(default_factory=dict)


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and check a suite (a name in ``benchmarks/suites`` or a path to a YAML file)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
        raise SuiteError(f"no suite {str(name_or_path)!r} (looked for {path}); known suites: {known}")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: not valid YAML: {e}") from e
    allowed = {"name", "description", "notebook", "defaults", "matrix", "runs", "group_by"}
    if not isinstance(d, dict) or set(d) - allowed:
        raise SuiteError(f"{path}: unknown key(s) {sorted(set(d) - allowed) if isinstance(d, dict) else d!r}; "
                         f"expected some of {sorted(allowed)}")
    nb = NOTEBOOKS_DIR / f"{d.get('notebook', 'cam_pipeline')}.md"
    if not nb.is_file():
        raise SuiteError(f"{path}: notebook {d.get('notebook')!r} not found (looked for {nb})")
    defaults = d.get("defaults") or {}
    matrix = d.get("matrix") or {}
    if not all(isinstance(v, list) and v for v in matrix.values()):
        raise SuiteError(f"{path}: every matrix entry must be a non-empty list, got {matrix}")
    runs = [{**defaults, **dict(zip(matrix, combo))} for combo in itertools.product(*matrix.values())] if matrix else []
    for extra in d.get("runs") or []:
        if not isinstance(extra, dict):
            raise SuiteError(f"{path}: each entry of 'runs' must be a mapping, got {extra!r}")
        runs.append({**defaults, **extra})
    if not runs:
        raise SuiteError(f"{path}: the suite defines no runs (give 'matrix' and/or 'runs')")
    try:
        parameters = kind_of(nb).parameters
    except ValueError as e:
        raise SuiteError(f"{path}: {e}") from e
    for r in runs:
        unknown = set(r) - set(parameters)
        if unknown:
            raise SuiteError(f"{path}: unknown parameter(s) {sorted(unknown)} in run {r}; "
                             f"expected some of {sorted(parameters)}")
    group_by = d.get("group_by") or (["method", "refine"] if "refine" in parameters else ["method"])
    bad = [g for g in group_by if g not in parameters]
    if bad:
        raise SuiteError(f"{path}: group_by names unknown parameter(s) {bad}; expected some of {sorted(parameters)}")
    return Suite(name=d.get("name", path.stem), notebook=nb, runs=runs, group_by=list(group_by),
                 description=d.get("description", ""), path=path)


def write_record(path: Path, record: dict) -> Path:
    """Write a measurement record (JSON) atomically, stamped with the date, the torch version and
    the number of threads it ran on."""
    import json
    import time

    import torch

    from s2d_core.cache import atomic_write_bytes

    record = {**record, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    atomic_write_bytes(Path(path), (json.dumps(record, indent=1) + "\n").encode())
    return Path(path)
