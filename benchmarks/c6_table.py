"""The C6 gain table: each method's own pseudo masks (``cpu`` suite) against ``<method> + C6``
for every prompt strategy and segmenter (``c6`` suite), over the same seeds.

    python -m benchmarks.c6_table            # writes benchmarks/records/c6/gain.md and gain.csv

A cell is the mean (± sample std) pseudo-mask mIoU (%) over the seeds present in *both*
suites, with the change against the method's own pseudo masks of the same seeds in brackets;
a cell with fewer seeds than its row names them in square brackets. Final mIoU (a segmentation network trained on the pseudo masks) is listed below the
table for the rows that have one.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

from s2d_core.cache import atomic_write_bytes

from .runner import RECORDS_DIR, load_records

STRATEGIES = ("spectral", "peak", "random", "kmeans", "box")
SEGMENTERS = ("tiny_sam", "random_walker", "sam")
METHOD_ORDER = ("cam", "proto", "c3", "c4", "vit_cam", "vit_attn", "c5")


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def _sd(xs):
    """Sample standard deviation (None for fewer than two values)."""
    if len(xs) < 2:
        return None
    m = _mean(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def _cell(v, sd) -> str:
    return f"{100 * v:.1f}" + ("" if sd is None else f" ± {100 * sd:.1f}")


def gain_rows(base_records: list[dict], c6_records: list[dict], preset: str = "cpu") -> list[dict]:
    """One row per method: ``own`` (mean over shared seeds) and ``<strategy>/<segmenter>`` means."""
    own: dict[str, dict[int, float]] = defaultdict(dict)
    own_final: dict[str, dict[int, float]] = defaultdict(dict)
    for r in base_records:
        p = r["params"]
        if (p.get("refine", "none") == "none" and p.get("c6", "none") == "none"
                and p.get("dataset", "synthetic") == "synthetic" and p.get("preset", "cpu") == preset):
            own[p["method"]][p["seed"]] = r["metrics"]["pseudo_miou"]
            if r["metrics"].get("final_miou") is not None:
                own_final[p["method"]][p["seed"]] = r["metrics"]["final_miou"]
    c6: dict[tuple, dict[int, float]] = defaultdict(dict)
    c6_final: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in c6_records:
        p = r["params"]
        if p.get("preset", "cpu") != preset or p.get("dataset", "synthetic") != "synthetic":
            continue
        key = (p["method"], p["c6"], p.get("c6_segmenter", "tiny_sam"))
        seen = c6[key].get(p["seed"])
        if seen is not None and abs(seen - r["metrics"]["pseudo_miou"]) > 1e-9:
            # a whole-pipeline run and a pseudo-mask run of the same setting must agree: same masks
            raise ValueError(f"{r['run_id']}: pseudo-mask mIoU {r['metrics']['pseudo_miou']:.4f} differs from "
                             f"{seen:.4f} of another run of {key}, seed {p['seed']}")
        c6[key][p["seed"]] = r["metrics"]["pseudo_miou"]
        if r["metrics"].get("final_miou") is not None:
            c6_final[key][p["seed"]] = r["metrics"]["final_miou"]
    methods = [m for m in METHOD_ORDER if any(k[0] == m for k in c6)] + \
              sorted({k[0] for k in c6} - set(METHOD_ORDER))
    rows = []
    for m in methods:
        seeds = sorted(set(own[m]) & set().union(*[set(v) for k, v in c6.items() if k[0] == m]))
        row = {"method": m, "seeds": " ".join(map(str, seeds)), "own": _mean([own[m][s] for s in seeds]),
               "own_sd": _sd([own[m][s] for s in seeds])}
        for strat in STRATEGIES:
            for seg in SEGMENTERS:
                got = c6.get((m, strat, seg), {})
                vals = [got[s] for s in seeds if s in got]
                if vals:
                    row[f"{strat}/{seg}"] = _mean(vals)
                    row[f"{strat}/{seg}/sd"] = _sd(vals)
                    row[f"{strat}/{seg}/n"] = len(vals)
                    row[f"{strat}/{seg}/seeds"] = " ".join(str(s) for s in seeds if s in got)
                    if len(vals) < len(seeds):  # the change is against the own masks of the same seeds
                        row[f"{strat}/{seg}/own"] = _mean([own[m][s] for s in seeds if s in got])
        finals = []
        for (mm, strat, seg), got in c6_final.items():
            if mm == m:
                shared = sorted(set(got) & set(own_final[m]))
                if shared:
                    finals.append((strat, seg, shared, _mean([got[s] for s in shared]),
                                   _mean([own_final[m][s] for s in shared])))
        row["finals"] = finals
        rows.append(row)
    return rows


def gain_markdown(rows: list[dict]) -> str:
    cols = [f"{st}/{sg}" for sg in SEGMENTERS for st in STRATEGIES if any(f"{st}/{sg}" in r for r in rows)]
    head = "| method | seeds | own pseudo masks | " + " | ".join(c.replace("/", " + ").replace("_", " ") for c in cols) + " |"
    lines = [head, "|" + "---|" * (3 + len(cols))]
    for r in rows:
        cells = [r["method"], r["seeds"], "" if r["own"] is None else _cell(r["own"], r["own_sd"])]
        for c in cols:
            if c not in r:
                cells.append("")
                continue
            v, n = r[c], r[f"{c}/n"]
            own = r.get(f"{c}/own", r["own"])
            d = "" if own is None else f" ({100 * (v - own):+.1f})"
            cells.append(_cell(v, r[f"{c}/sd"]) + d + ("" if n == len(r["seeds"].split()) else f" [seed{'s' * (n > 1)} {r[f'{c}/seeds']}]"))
        lines.append("| " + " | ".join(cells) + " |")
    finals = [(r["method"], *f) for r in rows for f in r["finals"]]
    if finals:
        lines += ["", "Final mIoU (val, segmentation network trained on the pseudo masks), same seeds:", "",
                  "| method | C6 | seeds | own pseudo masks | + C6 |", "|---|---|---|---|---|"]
        for m, strat, seg, seeds, c6v, ownv in finals:
            lines.append(f"| {m} | {strat} + {seg.replace('_', ' ')} | {' '.join(map(str, seeds))} | "
                         f"{100 * ownv:.1f} | {100 * c6v:.1f} ({100 * (c6v - ownv):+.1f}) |")
    return "\n".join(lines)


def write_gain(base: Path | None = None, c6: Path | None = None, out: Path | None = None) -> Path:
    base = base or RECORDS_DIR / "cpu" / "runs"
    c6 = c6 or RECORDS_DIR / "c6" / "runs"
    out = out or RECORDS_DIR / "c6"
    c6_records = load_records(c6) if c6.is_dir() else []
    if not c6_records:
        raise ValueError(f"no C6 records in {c6}: run `python -m benchmarks run c6` first")
    rows = gain_rows(load_records(base), c6_records)
    md = (f"<!-- written by `python -m benchmarks.c6_table` from {len(c6_records)} c6 records and the cpu suite -->\n\n"
          "Pseudo-mask mIoU (%, 2 000 training images) of each method's own pseudo masks and with C6 on top "
          "(change in brackets), mean over the seeds in the second column:\n\n" + gain_markdown(rows) + "\n")
    atomic_write_bytes(out / "gain.md", md.encode())
    buf = io.StringIO()
    fields = sorted({k for r in rows for k in r if k != "finals"}, key=lambda k: (k not in ("method", "seeds", "own"), k))
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "gain.csv", buf.getvalue().encode())
    return out / "gain.md"


def main() -> int:
    try:
        path = write_gain()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
