"""Executing a suite: each run is its notebook run by papermill, leaving one JSON record.

The parameters are injected after the notebook's cell tagged ``parameters``; the notebook
writes its record with an atomic rename, so a record either exists whole or not at all. The
executed notebook is kept as the run's log. A run whose record exists is skipped, so a killed
sweep resumes where it stopped; a run that fails (bad parameter, missing data) is reported and
the suite goes on.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from s2d_core.progress import progress as progress_bar

from .params import kind_of
from .suites import HERE, LOGS_DIR, RECORDS_DIR, Suite


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

    kind = kind_of(suite.notebook)
    kind.validate(params)
    rid = kind.run_id(params)
    record = records / f"{rid}.json"
    # The notebook writes a pending file; only a finished run replaces the record, so a failed
    # rerun (--force) neither passes as done nor destroys the earlier result.
    pending = records / f".{rid}.pending.json"
    pending.unlink(missing_ok=True)
    records.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    # the run's kernel inherits this: its log keeps one line per loop, not every refresh of a bar
    os.environ.setdefault("S2D_PROGRESS", "log")
    with tempfile.TemporaryDirectory() as tmp:
        src = _ipynb(suite.notebook, Path(tmp))
        pm.execute_notebook(str(src), str(logs / f"{rid}.ipynb"), kernel_name=kernel, progress_bar=progress,
                            parameters={**kind.parameters, **params, "record_path": str(pending), "run_id": rid,
                                        "suite": suite.name},
                            cwd=str(HERE.parent))
    if not pending.is_file():
        raise RuntimeError(f"the notebook finished but wrote no record at {pending}")
    os.replace(pending, record)
    return record


def run_suite(suite: Suite, records: Path | None = None, logs: Path | None = None, only: str | None = None,
              force: bool = False, kernel: str = "python3", progress: bool = True) -> dict:
    """Run every run of ``suite`` that has no record yet; returns ``{"done", "skipped", "failed"}``."""
    records = Path(records) if records else RECORDS_DIR / suite.name / "runs"
    logs = Path(logs) if logs else LOGS_DIR / suite.name / "logs"
    records.mkdir(parents=True, exist_ok=True)
    wanted = None if only is None else [w.strip() for w in only.split(",") if w.strip()]
    run_id = kind_of(suite.notebook).run_id
    runs = [r for r in suite.runs if wanted is None or any(w in run_id(r) for w in wanted)]
    status: dict[str, list] = {"done": [], "skipped": [], "failed": []}
    bar = progress_bar(runs, desc=f"suite {suite.name}", unit="run", disable=not progress, leave=True)
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
            bar.write(f"FAILED {rid}: {msg}" + (f" (log: {logs / (rid + '.ipynb')})" if (logs / f"{rid}.ipynb").exists() else ""))
            continue
        status["done"].append(rid)
        bar.write(f"done {rid} in {time.perf_counter() - t0:.0f} s")
    return status


def _reason(e: Exception) -> str:
    ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
    if ename:  # papermill's PapermillExecutionError: the notebook's own exception
        return f"{ename}: {evalue}"
    return f"{type(e).__name__}: {e}"
