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

import sys
from pathlib import Path

from .execute import run_suite
from .params import kind_of
from .reports import write_tables
from .suites import SUITES_DIR, SuiteError, load_suite


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks run|table|list``; returns the exit status."""
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
                        print("  ", kind_of(s.notebook).run_id(p), p)
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
