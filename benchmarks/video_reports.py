"""Reports of a video suite: S-measure, max F, max E, MAE (per sequence, then over sequences), the
same on camouflaged and other clips, and the warping error, averaged over seeds.

    python -m benchmarks table video      # writes records/video/table.md, .csv and .png
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from s2d_core.pipeline.video import VIDEO_METHODS, VIDEO_PARAMETERS

from .params import video_run_id
from .reports import markdown, seed_stats, suite_frame, write_outputs
from .suites import Suite

__all__ = ["VIDEO_METRICS", "video_frame", "video_table", "write_video_tables"]

VIDEO_METRICS = ("s_measure", "max_f", "max_e", "mae", "warping_error", "warping_error_gt", "camouflaged_s_measure",
                 "plain_s_measure")
LABELS = {"s_measure": "S", "max_f": "max F", "max_e": "max E", "mae": "MAE", "warping_error": "warping error",
          "warping_error_gt": "warping error of the truth", "camouflaged_s_measure": "S camouflaged",
          "plain_s_measure": "S not camouflaged"}


def video_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run: ``run_id``, the parameters, the metrics and ``train_seconds``."""
    params = pd.DataFrame([{**VIDEO_PARAMETERS, **r["params"]} for r in records], columns=list(VIDEO_PARAMETERS))
    params["init"] = params["init"].fillna("preset")
    metrics = pd.DataFrame([r.get("metrics", {}) for r in records]).reindex(columns=list(VIDEO_METRICS)).astype(float)
    seconds = pd.DataFrame([r.get("seconds", {}) for r in records]).reindex(columns=["train"]).astype(float)
    ids = pd.Series([r.get("run_id") for r in records], name="run_id", dtype=object)
    return pd.concat([ids, params, metrics, seconds.add_suffix("_seconds")], axis=1)


def video_table(frame: pd.DataFrame, group_by: list[str]) -> pd.DataFrame:
    """Mean and sample std over seeds of every metric, one row per group, methods in
    :data:`VIDEO_METHODS` order."""
    table = seed_stats(frame, group_by, list(VIDEO_METRICS) + ["train_seconds"])
    order = {m: i for i, m in enumerate(VIDEO_METHODS)}
    if "method" in table:
        table = table.sort_values("method", key=lambda c: c.map(lambda m: order.get(m, len(order))), kind="stable",
                                  ignore_index=True)
    return table


def _cell(table: pd.DataFrame, m: str, digits: int = 3) -> pd.Series:
    mean, sd = table[f"{m}_mean"], table[f"{m}_std"]
    fmt = f"{{:.{digits}f}}"
    cell = mean.map(fmt.format) + (" ± " + sd.map(fmt.format)).where(table["n"] > 1, "")
    return cell.where(mean.notna(), "")


def write_video_tables(suite: Suite, records: Path | None = None, out: Path | None = None) -> dict[str, Path]:
    """``table.md``, ``table.csv`` and ``table.png`` of a video suite (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame, records, out = suite_frame(suite, records, out, video_frame, video_run_id)
    table = video_table(frame, suite.group_by)
    cells = table[suite.group_by + ["seeds"]].copy()
    for m in VIDEO_METRICS:
        cells[LABELS[m]] = _cell(table, m)
    cells["training (min)"] = (table["train_seconds_mean"] / 60).map("{:.1f}".format)
    md = (f"<!-- written by `python -m benchmarks table {suite.name}` from {len(frame)} records -->\n\n"
          "Test clips; S, max F (beta^2 = 0.3), max E and MAE per sequence with its first and last frame skipped, "
          "then averaged over sequences; mean ± sample std over seeds. Warping error: mean change of the prediction "
          "between consecutive frames after compensating the motion -- the true motion on pixels not occluded in the "
          "synthetic world, the estimated flow on every pixel for real data -- (0 for any constant prediction; the "
          "truth's own is given beside).\n\n" + markdown(cells) + "\n")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    shown = ["s_measure", "max_f", "max_e", "camouflaged_s_measure", "plain_s_measure"]
    width = 0.8 / max(len(table), 1)
    for i, row in table.iterrows():
        label = " ".join(str(row[k]) for k in suite.group_by)
        x = [j + (i - (len(table) - 1) / 2) * width for j in range(len(shown))]
        ax.bar(x, [row[f"{m}_mean"] for m in shown], width, yerr=[row[f"{m}_std"] for m in shown], capsize=2, label=label)
    ax.set_xticks(range(len(shown)), [LABELS[m] for m in shown], fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return write_outputs(out, md, table, fig)


if __name__ == "__main__":  # pragma: no cover
    from .suites import load_suite

    print(write_video_tables(load_suite(sys.argv[1] if len(sys.argv) > 1 else "video"))["md"].read_text())
