"""The benchmark runner: execute a suite of papermill notebooks, one JSON record per run.

A *suite* is a YAML file in ``benchmarks/suites/``::

    name: cpu
    notebook: cam_pipeline          # benchmarks/notebooks/cam_pipeline.md (MyST, jupytext)
    defaults: {preset: cpu, device: cpu}
    matrix:                         # every combination becomes one run
      refine: [none, crf]
      seed: [0, 1, 2]
    runs: []                        # optional: extra parameter sets, each merged over defaults
    group_by: [method, refine]      # the rows of the aggregated table (seeds are averaged)

Each run executes the notebook with papermill (the parameters are injected after its cell
tagged ``parameters``); the notebook writes its record with an atomic rename, so a record
either exists whole or not at all. The executed notebook is kept as the run's log. A run
whose record exists is skipped, so a killed sweep resumes where it stopped; a run that fails
(bad parameter, missing data) is reported and the suite goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s2d_core.cache import atomic_write_bytes

HERE = Path(__file__).resolve().parent
SUITES_DIR = HERE / "suites"
NOTEBOOKS_DIR = HERE / "notebooks"
RECORDS_DIR = HERE / "records"
LOGS_DIR = HERE.parent / "results"

#: Parameters every benchmark notebook accepts, with their defaults (validated before a run).
PARAMETERS: dict[str, Any] = {
    "preset": "cpu",          # synthetic preset and pipeline preset (s2d_core.presets)
    "dataset": "synthetic",   # "synthetic" or "voc"
    "dataset_root": None,     # folder of VOC2012 when dataset == "voc"
    "method": "cam",          # densifier between CAM and pseudo masks (s2d_core.densify.METHODS)
    "refine": "none",         # "none" or "crf" (IRN-style dense CRF on the pseudo masks)
    "backbone": None,         # timm backbone for classifier and segmenter; None = the preset's
    "seed": 0,
    "device": "cpu",          # "cpu", "cuda", "cuda:N", "mps" or "auto"
    "overrides": {},          # PipelineConfig fields to change, e.g. {"classifier_train": {"epochs": 1}}
    "c6": "none",             # C6 prompt strategy on top of the method's CAMs: none, spectral, peak, random, kmeans, box
    "c6_segmenter": "tiny_sam",  # who answers the prompts: tiny_sam, random_walker, sam (needs sam_checkpoint)
    "sam_checkpoint": None,   # path of a real SAM checkpoint (sam_vit_b_01ec64.pth, ...) for c6_segmenter="sam"
    "final": True,            # train and evaluate the segmentation networks (False: stop after the pseudo masks)
}
#: Parameters added after records existed: left out of a run's id while at their default, so
#: the ids (and records) of earlier runs stay valid.
_LATER = ("c6", "c6_segmenter", "sam_checkpoint", "final")
METRICS = ("seed_miou", "pseudo_miou", "pseudo_coverage", "final_miou", "fully_supervised_miou")
STAGES = ("classifier", "cams", "promptable", "pseudo_masks", "segmenter", "fully_supervised")
C6_STRATEGIES = ("none", "spectral", "peak", "random", "kmeans", "box")


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


def validate_params(params: dict) -> None:
    """Raise ``ValueError`` with a clear message for a parameter set that cannot run."""
    from s2d_core.densify import METHODS
    from s2d_core.presets import PIPELINES
    from s2d_core.train import resolve_device

    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; expected some of {sorted(PARAMETERS)}")
    p = {**PARAMETERS, **params}
    if p["method"] not in METHODS:
        raise ValueError(f"unknown method {p['method']!r}: expected one of {sorted(METHODS)}")
    if p["refine"] not in ("none", "crf"):
        raise ValueError(f"refine must be 'none' or 'crf', got {p['refine']!r}")
    if p["preset"] not in PIPELINES:
        raise ValueError(f"unknown preset {p['preset']!r}: expected one of {sorted(PIPELINES)}")
    if p["dataset"] not in ("synthetic", "voc"):
        raise ValueError(f"dataset must be 'synthetic' or 'voc', got {p['dataset']!r}")
    if p["dataset"] == "voc":
        if not p["dataset_root"]:
            raise ValueError("dataset='voc' needs dataset_root=<folder with VOC2012 or VOCdevkit/VOC2012>")
        if not Path(p["dataset_root"]).expanduser().exists():
            raise ValueError(f"dataset_root {p['dataset_root']!r} does not exist")
    else:
        from s2d_core.presets import PRESETS

        if p["dataset_root"] is not None:
            raise ValueError("dataset_root is only used with dataset='voc'")
        if p["preset"] not in PRESETS:
            raise ValueError(f"preset {p['preset']!r} has no synthetic data; with dataset='synthetic' use one of {sorted(PRESETS)}")
    if not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {p['seed']!r}")
    if p["c6"] not in C6_STRATEGIES:
        raise ValueError(f"c6 must be one of {C6_STRATEGIES}, got {p['c6']!r}")
    if p["c6_segmenter"] not in ("tiny_sam", "random_walker", "sam"):
        raise ValueError(f"c6_segmenter must be 'tiny_sam', 'random_walker' or 'sam', got {p['c6_segmenter']!r}")
    if p["c6"] == "none" and (p["c6_segmenter"] != PARAMETERS["c6_segmenter"] or p["sam_checkpoint"] is not None):
        raise ValueError("c6_segmenter and sam_checkpoint only apply with c6 set to a prompt strategy (c6='none' here)")
    if p["c6"] != "none" and p["refine"] != "none":
        raise ValueError(f"refine={p['refine']!r} does not apply to C6 pseudo masks (the segmenter draws the "
                         f"boundaries); use refine='none' with c6={p['c6']!r}")
    if p["c6_segmenter"] == "sam":
        if not p["sam_checkpoint"]:
            raise ValueError("c6_segmenter='sam' needs sam_checkpoint=<path to sam_vit_b_01ec64.pth or similar>")
        if not Path(p["sam_checkpoint"]).expanduser().is_file():
            raise ValueError(f"sam_checkpoint {p['sam_checkpoint']!r} is not a file (download it from "
                             f"https://github.com/facebookresearch/segment-anything#model-checkpoints)")
    if not isinstance(p["final"], bool):
        raise ValueError(f"final must be true or false, got {p['final']!r}")
    if not isinstance(p["overrides"], dict):
        raise ValueError(f"overrides must be a mapping of PipelineConfig fields, got {p['overrides']!r}")
    resolve_device(p["device"])
    pipeline_config(p)  # validates backbone and overrides


def pipeline_config(params: dict):
    """The :class:`~s2d_core.config.PipelineConfig` a parameter set asks for."""
    from s2d_core.config import PipelineConfig
    from s2d_core.presets import get_pipeline

    p = {**PARAMETERS, **params}
    d = get_pipeline(p["preset"]).to_dict()
    if p["backbone"] is not None:
        d["classifier"]["backbone"] = d["segmenter"]["backbone"] = p["backbone"]
    for k, v in p["overrides"].items():
        if k not in d:
            raise ValueError(f"overrides: unknown PipelineConfig field {k!r}; expected some of {sorted(d)}")
        d[k] = _deep_merge(d[k], v)
    # `refine` is the one switch for the CRF, so a row labelled "none" never uses one
    d["pseudo"]["crf"] = p["refine"] == "crf"
    if p["c6"] != "none":
        d["c6"] = {**d["c6"], "strategy": p["c6"], "segmenter": p["c6_segmenter"], "sam_checkpoint": p["sam_checkpoint"]}
    cfg = PipelineConfig.from_dict(d)
    import timm

    if not timm.is_model(cfg.classifier.backbone):
        raise ValueError(f"unknown timm backbone {cfg.classifier.backbone!r}")
    return cfg


def _deep_merge(base, change):
    """``change`` over ``base``, recursing into mappings (so nested preset values survive)."""
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{k: _deep_merge(base.get(k), v) for k, v in change.items()}}
    return change


def run_id(params: dict) -> str:
    """A readable, unique file name for a parameter set."""
    p = {**PARAMETERS, **params}
    hashed = {k: v for k, v in p.items() if not (k in _LATER and v == PARAMETERS[k])}
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
    parts.append(f"seed{p['seed']}")
    return "-".join(parts) + "-" + digest


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
    for r in runs:
        unknown = set(r) - set(PARAMETERS)
        if unknown:
            raise SuiteError(f"{path}: unknown parameter(s) {sorted(unknown)} in run {r}; "
                             f"expected some of {sorted(PARAMETERS)}")
    group_by = d.get("group_by") or ["method", "refine"]
    bad = [g for g in group_by if g not in PARAMETERS]
    if bad:
        raise SuiteError(f"{path}: group_by names unknown parameter(s) {bad}; expected some of {sorted(PARAMETERS)}")
    return Suite(name=d.get("name", path.stem), notebook=nb, runs=runs, group_by=list(group_by),
                 description=d.get("description", ""), path=path)


def _ipynb(notebook_md: Path, folder: Path) -> Path:
    import jupytext

    nb = jupytext.read(notebook_md)
    out = folder / (notebook_md.stem + ".ipynb")
    jupytext.write(nb, out)
    return out


def execute_run(suite: Suite, params: dict, records: Path, logs: Path, kernel: str = "python3",
                progress: bool = False) -> Path:
    """Execute one run; returns the path of its record. Raises on failure (with the reason)."""
    import papermill as pm

    validate_params(params)
    rid = run_id(params)
    record = records / f"{rid}.json"
    # The notebook writes a pending file; only a finished run replaces the record, so a failed
    # rerun (--force) neither passes as done nor destroys the earlier result.
    pending = records / f".{rid}.pending.json"
    pending.unlink(missing_ok=True)
    records.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = _ipynb(suite.notebook, Path(tmp))
        pm.execute_notebook(str(src), str(logs / f"{rid}.ipynb"), kernel_name=kernel, progress_bar=progress,
                            parameters={**PARAMETERS, **params, "record_path": str(pending), "run_id": rid,
                                        "suite": suite.name},
                            cwd=str(HERE.parent))
    if not pending.is_file():
        raise RuntimeError(f"the notebook finished but wrote no record at {pending}")
    os.replace(pending, record)
    return record


def run_suite(suite: Suite, records: Path | None = None, logs: Path | None = None, only: str | None = None,
              force: bool = False, kernel: str = "python3", progress: bool = True) -> dict:
    """Run every run of ``suite`` that has no record yet; returns ``{"done", "skipped", "failed"}``."""
    from tqdm.auto import tqdm

    records = Path(records) if records else RECORDS_DIR / suite.name / "runs"
    logs = Path(logs) if logs else LOGS_DIR / suite.name / "logs"
    records.mkdir(parents=True, exist_ok=True)
    wanted = None if only is None else [w.strip() for w in only.split(",") if w.strip()]
    runs = [r for r in suite.runs if wanted is None or any(w in run_id(r) for w in wanted)]
    status: dict[str, list] = {"done": [], "skipped": [], "failed": []}
    bar = tqdm(runs, desc=f"suite {suite.name}", unit="run", disable=not progress)
    for params in bar:
        rid = run_id(params)
        bar.set_postfix_str(rid)
        if (records / f"{rid}.json").is_file() and not force:
            status["skipped"].append(rid)
            continue
        t0 = time.perf_counter()
        try:
            execute_run(suite, params, records, logs, kernel, progress=progress)
        except Exception as e:  # noqa: BLE001 - one failed run must not stop the suite
            msg = _reason(e)
            status["failed"].append((rid, msg))
            tqdm.write(f"FAILED {rid}: {msg}" + (f" (log: {logs / (rid + '.ipynb')})" if (logs / f"{rid}.ipynb").exists() else ""))
            continue
        status["done"].append(rid)
        tqdm.write(f"done {rid} in {time.perf_counter() - t0:.0f} s")
    return status


def _reason(e: Exception) -> str:
    ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
    if ename:  # papermill's PapermillExecutionError: the notebook's own exception
        return f"{ename}: {evalue}"
    return f"{type(e).__name__}: {e}"


# --- aggregation -------------------------------------------------------------------------------

def load_records(folder: Path) -> list[dict]:
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        if p.name.startswith("."):  # a run in progress (pending record)
            continue
        try:
            out.append(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not a valid record ({e}); delete it and rerun that run") from e
    return out


def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def aggregate(records: list[dict], group_by: list[str]) -> list[dict]:
    """One row per group: ``n`` seeds, ``<metric>_mean`` / ``_std`` (fractions), stage seconds."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = tuple(str(r["params"].get(k, PARAMETERS.get(k))) for k in group_by)
        groups.setdefault(key, []).append(r)
    rows = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(zip(group_by, key))
        row["n"] = len(rs)
        row["seeds"] = " ".join(str(r["params"]["seed"]) for r in sorted(rs, key=lambda r: r["params"]["seed"]))
        for m in METRICS:
            vals = [r["metrics"][m] for r in rs if r["metrics"].get(m) is not None]
            if vals:
                row[f"{m}_mean"], row[f"{m}_std"] = _mean_std(vals)
        for s in STAGES:
            vals = [r["seconds"][s] for r in rs if s in r.get("seconds", {})]
            if vals:
                row[f"{s}_seconds"] = sum(vals) / len(vals)
        rows.append(row)
    # "none" (no refinement, the baseline) first, then in the order of the group values
    return sorted(rows, key=lambda r: tuple("" if r[k] in ("none", "None") else r[k] for k in group_by))


LABELS = {"seed_miou": "seed mIoU", "pseudo_miou": "pseudo-mask mIoU", "pseudo_coverage": "labelled px",
          "final_miou": "final mIoU", "fully_supervised_miou": "fully sup. mIoU"}


def markdown_table(rows: list[dict], group_by: list[str]) -> str:
    """Mean +- sample std over seeds, in percent (just the value for a single seed)."""
    metrics = [m for m in METRICS if any(f"{m}_mean" in r for r in rows)]
    head = "| " + " | ".join(group_by + ["seeds"] + [LABELS[m] for m in metrics]) + " |"
    lines = [head, "|" + "---|" * (len(group_by) + 1 + len(metrics))]
    for r in rows:
        cells = [r[k] for k in group_by] + [r["seeds"]]
        for m in metrics:
            if f"{m}_mean" not in r:
                cells.append("")
            elif r["n"] > 1:
                cells.append(f"{100 * r[f'{m}_mean']:.1f} ± {100 * r[f'{m}_std']:.1f}")
            else:
                cells.append(f"{100 * r[f'{m}_mean']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_table(rows: list[dict], group_by: list[str]) -> str:
    """Mean wall time of each stage (minutes), as first measured (cached stages keep their time)."""
    stages = [s for s in STAGES if any(f"{s}_seconds" in r for r in rows)]
    lines = ["| " + " | ".join(group_by + [f"{s} (min)" for s in stages]) + " |",
             "|" + "---|" * (len(group_by) + len(stages))]
    for r in rows:
        lines.append("| " + " | ".join([r[k] for k in group_by] + [
            f"{r[f'{s}_seconds'] / 60:.1f}" if f"{s}_seconds" in r else "" for s in stages]) + " |")
    return "\n".join(lines)


def plot_rows(rows: list[dict], group_by: list[str]):
    """Grouped bars (mean +- std over seeds) of each metric, one colour per row."""
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [m for m in ("seed_miou", "pseudo_miou", "final_miou", "fully_supervised_miou")
               if any(f"{m}_mean" in r for r in rows)]
    fig, ax = plt.subplots(figsize=(1.8 + 1.9 * len(metrics), 3.4))
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(metrics))
    for i, r in enumerate(rows):
        mean = [100 * r.get(f"{m}_mean", np.nan) for m in metrics]
        std = [100 * r.get(f"{m}_std", 0) for m in metrics]
        label = " + ".join(r[k] for k in group_by if r[k] not in ("none", "None"))
        bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, mean, width, yerr=std, capsize=3, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(x, [LABELS[m] for m in metrics])
    ax.set_ylabel("mIoU (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def write_tables(suite: Suite, records: Path | None = None, out: Path | None = None) -> dict[str, Path]:
    """Aggregate a suite's records into ``table.csv``, ``table.md`` and ``table.png`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    records = Path(records) if records else RECORDS_DIR / suite.name / "runs"
    out = Path(out) if out else records.parent
    wanted = {run_id(p) for p in suite.runs}
    found = load_records(records)
    recs = [r for r in found if r.get("run_id") in wanted]
    if len(recs) < len(found):
        print(f"note: {len(found) - len(recs)} record(s) in {records} belong to no run of suite "
              f"{suite.name!r} as it is now and are left out of the table", file=sys.stderr)
    if not recs:
        raise ValueError(f"no records of suite {suite.name!r} in {records}: run it first "
                         f"(python -m benchmarks run {suite.name})")
    rows = aggregate(recs, suite.group_by)
    buf = io.StringIO()
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k not in suite.group_by, k))
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    paths = {"csv": out / "table.csv", "md": out / "table.md", "png": out / "table.png"}
    atomic_write_bytes(paths["csv"], buf.getvalue().encode())
    md = (f"<!-- written by `python -m benchmarks table {suite.name}` from {len(recs)} records -->\n\n"
          f"{markdown_table(rows, suite.group_by)}\n\nWall time per stage:\n\n{timing_table(rows, suite.group_by)}\n")
    atomic_write_bytes(paths["md"], md.encode())
    fig = plot_rows(rows, suite.group_by)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    atomic_write_bytes(paths["png"], png.getvalue())
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a suite (skipping runs already recorded), then write its tables")
    r.add_argument("suite", help="suite name (benchmarks/suites/NAME.yaml) or path")
    r.add_argument("--records", type=Path, help="folder of run records (default benchmarks/records/SUITE/runs)")
    r.add_argument("--logs", type=Path, help="folder of executed notebooks (default results/SUITE/logs)")
    r.add_argument("--only", help="run only runs whose id contains this text (several: comma-separated, any matches)")
    r.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    r.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    t = sub.add_parser("table", help="aggregate a suite's records into table.csv/.md/.png")
    t.add_argument("suite")
    t.add_argument("--records", type=Path)
    ls = sub.add_parser("list", help="list suites and their runs")
    ls.add_argument("suite", nargs="?")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            names = [a.suite] if a.suite else sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
            for n in names:
                s = load_suite(n)
                print(f"{s.name}: {len(s.runs)} runs - {s.description}")
                if a.suite:
                    for p in s.runs:
                        print("  ", run_id(p), p)
            return 0
        suite = load_suite(a.suite)
        if a.cmd == "run":
            st = run_suite(suite, a.records, a.logs, a.only, a.force, a.kernel)
            print(f"suite {suite.name}: {len(st['done'])} run, {len(st['skipped'])} already recorded, "
                  f"{len(st['failed'])} failed")
            for rid, msg in st["failed"]:
                print(f"  failed {rid}: {msg}")
            if st["done"] or st["skipped"]:
                paths = write_tables(suite, a.records)
                print("tables:", ", ".join(str(p) for p in paths.values()))
            return 1 if st["failed"] else 0
        paths = write_tables(suite, a.records)
        print(Path(paths["md"]).read_text())
        return 0
    except (SuiteError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
