"""The C6 gain table: each method's own pseudo masks against ``<method> + C6`` for every prompt
strategy and segmenter (``c6`` suite), over the same seeds.

    python -m benchmarks.c6_table                  # pre-trained CNNs: records/c6/gain.md and gain.csv
    python -m benchmarks.c6_table c6-scratch       # from scratch: records/c6-scratch/gain.md and gain.csv

A cell is the mean (± sample std) pseudo-mask mIoU (%) over its seeds, with the change against
the method's own pseudo masks of the same seeds in brackets; a cell with fewer seeds than its row
names them in square brackets. The own pseudo masks are read from each C6 run itself: its seed
mIoU is the mIoU of the method's threshold pseudo masks (the ``cpu`` suite's pseudo masks for
``refine=none``), computed from the very CAMs C6 was given, so a gain never compares two
trainings of a network. Final mIoU (a segmentation network trained on the pseudo masks) is listed
below the table for the rows that have one, against the base suite's (``cpu`` or ``cpu-scratch``) run of the same network
(its seed mIoU must equal the C6 run's; otherwise the row says so).

Both suites' records are read with :func:`benchmarks.reports.records_frame`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from s2d_core.cache import atomic_write_bytes
from s2d_core.pipeline import list_methods
from s2d_core.pseudo.config import PROMPT_STRATEGIES as C6_STRATEGIES
from s2d_core.pseudo.config import SEGMENTERS as C6_SEGMENTERS

from .reports import load_records, markdown, pct, plain_mean, records_frame, sample_std, table_csv
from .suites import RECORDS_DIR

METHOD_ORDER = tuple(list_methods())  # the registry's order: baselines first
C6_KEY = ["method", "c6", "c6_segmenter"]


def _seeds(s: pd.Series) -> str:
    return " ".join(map(str, sorted(s)))


def _last_per_seed(runs: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """The last record (in file order) of each setting and seed, as the table has always read them."""
    return runs.drop_duplicates([*key, "seed"], keep="last")


def _check_agreement(c6: pd.DataFrame) -> None:
    """A whole-pipeline run and a pseudo-mask run of the same setting and seed must agree: same masks."""
    seen = c6.groupby([*C6_KEY, "seed"], sort=False)["pseudo_miou"].shift()
    bad = c6[(c6["pseudo_miou"] - seen).abs() > 1e-9]
    if len(bad):
        r = bad.iloc[0]
        raise ValueError(f"{r['run_id']}: pseudo-mask mIoU {r['pseudo_miou']:.4f} differs from "
                         f"{seen[bad.index[0]]:.4f} of another run of {tuple(r[C6_KEY])}, seed {r['seed']}")


def gain_tables(base: pd.DataFrame, c6: pd.DataFrame, preset: str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gain table (one row per method) and the final-mIoU table, from two :func:`records_frame`\\ s.

    Gain columns: ``method``, ``seeds`` (those of the method in both suites), ``own`` /
    ``own_sd`` (the method's own pseudo masks over them) and, per ``<strategy>/<segmenter>``,
    the mean, ``/sd``, ``/n``, ``/seeds`` and, for a cell with fewer seeds than its row,
    ``/own`` (the own masks over the cell's seeds). Fractions; sd is NaN below two seeds.
    """
    own = base[(base["refine"] == "none") & (base["c6"] == "none") & (base["dataset"] == "synthetic")
               & (base["preset"] == preset)]
    c6 = c6[(c6["preset"] == preset) & (c6["dataset"] == "synthetic")]
    _check_agreement(c6)
    present = set(c6["method"])
    methods = [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))

    # a C6 result beside the own pseudo masks of the same CAMs: the run's own seed mIoU
    paired = (_last_per_seed(c6, C6_KEY)[[*C6_KEY, "seed", "pseudo_miou", "seed_miou"]]
              .rename(columns={"seed_miou": "pseudo_miou_own"}).sort_values("seed", kind="stable"))
    rows = (paired.drop_duplicates(["method", "seed"]).groupby("method")
            .agg(seeds=("seed", _seeds), own=("pseudo_miou_own", plain_mean), own_sd=("pseudo_miou_own", sample_std))
            .reindex(methods))
    rows["seeds"] = rows["seeds"].fillna("")

    shown = paired[paired["c6"].isin(C6_STRATEGIES) & paired["c6_segmenter"].isin(C6_SEGMENTERS)]
    cells = shown.groupby(C6_KEY).agg(value=("pseudo_miou", plain_mean), sd=("pseudo_miou", sample_std),
                                      n=("seed", "size"), seeds=("seed", _seeds), own=("pseudo_miou_own", plain_mean))
    cells = cells.reset_index(["c6", "c6_segmenter"])
    cells["column"] = cells["c6"] + "/" + cells["c6_segmenter"]
    # the change is against the own masks of the cell's seeds only where the cell has fewer than its row
    cells["own"] = cells["own"].where(cells["n"] < rows["seeds"].str.split().str.len().reindex(cells.index))
    wide = cells.pivot(columns="column", values=["value", "sd", "n", "seeds", "own"])
    wide.columns = [c if stat == "value" else f"{c}/{stat}" for stat, c in wide.columns]
    wide = wide.drop(columns=[c for c in wide if c.endswith("/own") and wide[c].isna().all()])
    wide = wide.astype({c: "Int64" for c in wide if c.endswith("/n")})  # counts, empty where no cell
    gain = rows.join(wide).rename_axis("method").reset_index()

    # final mIoU: every seed with a final result in both suites, from the same network (equal seed mIoU)
    finals = c6[c6["final_miou"].notna()]
    order = finals.groupby(C6_KEY, sort=False).ngroup().rename("order")  # first record of each setting first
    finals = (_last_per_seed(finals.join(order), C6_KEY)[[*C6_KEY, "order", "seed", "final_miou", "seed_miou"]]
              .merge(_last_per_seed(own[own["final_miou"].notna()], ["method"])[["method", "seed", "final_miou",
                                                                                  "seed_miou"]],
                     on=["method", "seed"], suffixes=("", "_own"), how="left")
              .sort_values("seed", kind="stable"))
    other_network = (finals["seed_miou"] - finals["seed_miou_own"]).abs() > 1e-9
    finals["final_miou_own"] = finals["final_miou_own"].mask(other_network)
    finals = (finals.groupby([*C6_KEY, "order"])
              .agg(seeds=("seed", _seeds), final=("final_miou", plain_mean),
                   own=("final_miou_own", lambda x: plain_mean(x) if x.notna().all() else float("nan")))
              .reset_index())
    finals = (finals.assign(rank=finals["method"].map(methods.index)).sort_values(["rank", "order"], ignore_index=True)
              .drop(columns=["rank", "order"]))
    return gain, finals


def _delta(x: pd.Series) -> pd.Series:
    return (100 * x).map("{:+.1f}".format)


def _mean_sd(mean: pd.Series, sd: pd.Series) -> pd.Series:
    return pct(mean) + (" ± " + pct(sd)).where(sd.notna(), "")


def gain_markdown(gain: pd.DataFrame, finals: pd.DataFrame) -> str:
    cols = [f"{st}/{sg}" for sg in C6_SEGMENTERS for st in C6_STRATEGIES if f"{st}/{sg}" in gain]
    cells = gain[["method", "seeds"]].copy()
    cells["own pseudo masks"] = _mean_sd(gain["own"], gain["own_sd"]).where(gain["own"].notna(), "")
    n_row = gain["seeds"].str.split().str.len()
    for c in cols:
        v, n = gain[c], gain[f"{c}/n"]
        own = gain[f"{c}/own"].fillna(gain["own"]) if f"{c}/own" in gain else gain["own"]
        delta = (" (" + _delta(v - own) + ")").where(own.notna(), "")
        few = (" [seed" + n.gt(1).map({True: "s", False: ""}) + " " + gain[f"{c}/seeds"] + "]").where(n != n_row, "")
        cells[c.replace("/", " + ").replace("_", " ")] = (_mean_sd(v, gain[f"{c}/sd"]) + delta + few).where(v.notna(), "")
    md = markdown(cells)
    if len(finals):
        f = pd.DataFrame({"method": finals["method"],
                          "C6": finals["c6"] + " + " + finals["c6_segmenter"].str.replace("_", " "),
                          "seeds": finals["seeds"],
                          "own pseudo masks": pct(finals["own"]).where(finals["own"].notna(), "(no run of this network)"),
                          "+ C6": pct(finals["final"]) + (" (" + _delta(finals["final"] - finals["own"]) + ")")
                          .where(finals["own"].notna(), "")})
        md += "\n\nFinal mIoU (val, segmentation network trained on the pseudo masks), same seeds:\n\n" + markdown(f)
    return md


#: Each C6 suite and the suite of the same networks without C6.
BASE_SUITES = {"c6": "cpu", "c6-scratch": "cpu-scratch"}


def write_gain(base: Path | None = None, c6: Path | None = None, out: Path | None = None,
               suite: str = "c6") -> Path:
    """Write ``gain.md`` and ``gain.csv`` of C6 suite ``suite`` (default: from its committed
    records and those of its base suite, :data:`BASE_SUITES`)."""
    if suite not in BASE_SUITES:
        raise ValueError(f"unknown C6 suite {suite!r}: expected one of {sorted(BASE_SUITES)}")
    base_name = BASE_SUITES[suite]
    base = base or RECORDS_DIR / base_name / "runs"
    c6 = c6 or RECORDS_DIR / suite / "runs"
    out = out or RECORDS_DIR / suite
    c6_records = load_records(c6) if c6.is_dir() else []
    if not c6_records:
        raise ValueError(f"no C6 records in {c6}: run `python -m benchmarks run {suite}` first")
    gain, finals = gain_tables(records_frame(load_records(base)), records_frame(c6_records))
    md = (f"<!-- written by `python -m benchmarks.c6_table {suite}` from {len(c6_records)} {suite} records and the "
          f"{base_name} suite -->\n\n"
          "Pseudo-mask mIoU (%, 2 000 training images) of each method's own pseudo masks (from the CAMs each C6 "
          "run was given) and with C6 on top (change in brackets), mean over the seeds in the second column:\n\n"
          + gain_markdown(gain, finals) + "\n")
    atomic_write_bytes(out / "gain.md", md.encode())
    atomic_write_bytes(out / "gain.csv", table_csv(gain, ["method", "seeds", "own"]))
    return out / "gain.md"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) > 1:
            raise ValueError(f"expected at most one argument (a C6 suite: {sorted(BASE_SUITES)}), got {args}")
        path = write_gain(suite=args[0] if args else "c6")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
