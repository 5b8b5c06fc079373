"""Reports of an SPML suite: final mIoU of the same segmentation network trained on each kind of
label by SPML and by its baselines, the share of full supervision, the labels' own quality.

    python -m benchmarks table spml      # writes records/spml/table.md, .csv and .png
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from s2d_core.cache import atomic_write_bytes
from s2d_core.data.labels import KINDS
from s2d_core.pipeline.spml import SPML_PARAMETERS

from .params import spml_run_id
from .reports import load_records, markdown, plain_mean, sample_std
from .suites import RECORDS_DIR, Suite

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

    records = Path(records) if records else RECORDS_DIR / suite.name / "runs"
    out = Path(out) if out else records.parent
    frame = spml_frame(load_records(records))
    frame = frame[frame["run_id"].isin({spml_run_id(p) for p in suite.runs})]
    if frame.empty:
        raise ValueError(f"no records of suite {suite.name!r} in {records}: run it first (python -m benchmarks run {suite.name})")
    g = frame.groupby(["kind", "method"], sort=False)
    cols = list(METRICS) + ["embedding_seconds", "segmenter_seconds"]
    table = pd.concat([g.size().rename("n"), g["seed"].agg(lambda s: " ".join(map(str, sorted(s)))).rename("seeds"),
                       g[cols].agg(plain_mean).add_suffix("_mean"), g[cols].agg(sample_std).add_suffix("_std")],
                      axis=1).reset_index()
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
    paths = {"csv": out / "table.csv", "md": out / "table.md", "png": out / "table.png"}
    atomic_write_bytes(paths["md"], md.encode())
    atomic_write_bytes(paths["csv"], table.to_csv(index=False, lineterminator="\r\n").encode())
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    labels = table["kind"] + "\n" + table["method"]
    ax.bar(range(len(table)), 100 * table["final_miou_mean"], yerr=100 * table["final_miou_std"].fillna(0), capsize=3)
    ax.set_xticks(range(len(table)), labels, fontsize=7)
    ax.set_ylabel("final mIoU (%)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(paths["png"], png.getvalue())
    return paths
