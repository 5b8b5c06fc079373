"""Reports of an SPML suite: final mIoU of the same segmentation network trained on each kind of
label by SPML and by its baselines, the share of full supervision, the labels' own quality.

    python -m benchmarks table spml      # writes records/spml/table.md, .csv and .png
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from s2d_core.data.labels import KINDS
from s2d_core.pipeline.spml import SPML_PARAMETERS

from .params import spml_run_id
from .reports import markdown, seed_stats, suite_frame, write_outputs
from .suites import Suite

__all__ = ["spml_frame", "write_spml_tables"]

METRICS = ("final_miou", "label_miou", "labelled_share")


def spml_frame(records: list[dict]) -> pd.DataFrame:
    params = pd.DataFrame([{**SPML_PARAMETERS, **r["params"]} for r in records], columns=list(SPML_PARAMETERS))
    metrics = pd.DataFrame([r.get("metrics", {}) for r in records]).reindex(columns=list(METRICS)).astype(float)
    seconds = pd.DataFrame([r.get("seconds", {}) for r in records]).reindex(columns=["embedding", "segmenter"]).astype(float)
    ids = pd.Series([r.get("run_id") for r in records], name="run_id", dtype=object)
    return pd.concat([ids, params, metrics, seconds.add_suffix("_seconds")], axis=1)


def write_spml_tables(suite: Suite, records: Path | None = None, out: Path | None = None) -> dict[str, Path]:
    """``table.md``, ``table.csv`` and ``table.png`` (final mIoU by label kind) of an SPML suite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame, records, out = suite_frame(suite, records, out, spml_frame, spml_run_id)
    table = seed_stats(frame, ["kind", "method"], list(METRICS) + ["embedding_seconds", "segmenter_seconds"])
    table = table.sort_values("kind", key=lambda c: c.map(KINDS.index), kind="stable", ignore_index=True)
    full = table.loc[table["method"] == "full", "final_miou_mean"]
    table["share_of_full"] = table["final_miou_mean"] / full.iloc[0] if len(full) else float("nan")
    cells = table[["kind", "method", "seeds"]].copy()
    for m, label in (("final_miou", "final mIoU"), ("label_miou", "label mIoU"), ("labelled_share", "labelled px")):
        mean, sd = 100 * table[f"{m}_mean"], 100 * table[f"{m}_std"]
        cells[label] = mean.map("{:.1f}".format) + (" ± " + sd.map("{:.1f}".format)).where(table["n"] > 1, "")
    cells["% of full"] = (100 * table["share_of_full"]).map("{:.0f}".format)
    cells["training (min)"] = ((table["embedding_seconds_mean"].fillna(0) + table["segmenter_seconds_mean"]) / 60).map(
        "{:.1f}".format)
    md = (f"<!-- written by `python -m benchmarks table {suite.name}` from {len(frame)} records -->\n\n"
          "Final mIoU (%, validation images) of the same segmentation network trained on each method's labels; "
          "label mIoU on the training images (labelled pixels only) and the share of pixels labelled; mean ± sample "
          "std over seeds.\n\n" + markdown(cells) + "\n")
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    labels = table["kind"] + "\n" + table["method"]
    ax.bar(range(len(table)), 100 * table["final_miou_mean"], yerr=100 * table["final_miou_std"].fillna(0), capsize=3)
    ax.set_xticks(range(len(table)), labels, fontsize=7)
    ax.set_ylabel("final mIoU (%)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return write_outputs(out, md, table, fig)
