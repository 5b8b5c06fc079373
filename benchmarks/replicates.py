"""What replicates: one row per claim of the thesis and of the papers it builds on, measured on
the synthetic world from scratch (``cpu-scratch``, ``c6-scratch``) and on pre-trained CNNs
(``cpu``, ``c6``), with the seed spread and a verdict.

    python -m benchmarks.replicates      # writes benchmarks/records/replicates/table.md, .csv, .png, pipeline.csv

How a claim is measured (:mod:`s2d_core.eval.replication`). Every claim compares two rows of the
records over the seeds both have (``A - B``: the method against its baseline, in mIoU points). The
difference is **real** only when its mean's absolute value exceeds the larger of the two rows'
seed standard deviations (and three seeds or more exist; with fewer it cannot be judged); it **holds** in a regime when it is real and at least
the size the papers lead us to expect (:attr:`Claim.expect`). The verdict over the two regimes:
*replicated* when it holds in both, *not replicated* when in neither, *mixed* otherwise;
*pending* while a regime cannot be judged; *one regime only* when both regimes are the same
networks (the ViT track is trained from scratch in both). No threshold depends on a measured value.

The published figures (PASCAL VOC 2012, ImageNet-initialised networks) sit in their own
columns (:data:`PUBLISHED`) and are never mixed with ours.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from s2d_core.cache import atomic_write_bytes
from s2d_core.cam.base import METHODS
from s2d_core.pipeline import list_methods

from s2d_core.eval.replication import holds, paired_difference, verdict

from .reports import load_records, markdown, records_frame, sample_std
from .suites import RECORDS_DIR

__all__ = ["CLAIMS", "PUBLISHED", "Claim", "claim_rows", "pipeline_ratio", "plot_claims", "pretraining_rows",
           "write_replicates"]

#: The two regimes and the suites whose records measure them.
REGIMES = {"scratch": ("cpu-scratch", "c6-scratch"), "pretrained": ("cpu", "c6")}


@dataclass(frozen=True)
class Claim:
    """A claim: ``metric`` of row ``a`` minus row ``b`` (each a dict of parameter values that
    selects runs, one per seed), expected to be at least ``expect`` mIoU points."""

    key: str
    claim: str
    source: str
    a: dict
    b: dict
    metric: str
    expect: float
    chapter: str
    suite: str = "cpu"   # "cpu": both rows from the cpu suites; "c6": row a from the c6 suites, row b its own masks
    b_metric: str | None = None  # the metric of row b when it differs (e.g. fully supervised vs final)


def _m(method: str, **kw) -> dict:
    return {"method": method, "refine": "none", "c6": "none", **kw}


CLAIMS: tuple[Claim, ...] = (
    Claim("cam-gap", "CAM alone falls far short of full supervision", "CAM (Zhou et al., CVPR 2016); IRN",
          {"method": "cam", "refine": "none", "c6": "none"}, {"method": "cam", "refine": "none", "c6": "none"},
          "fully_supervised_miou", 10.0, "cam", b_metric="final_miou"),
    Claim("crf", "a dense CRF improves CAM pseudo masks", "AffinityNet (CVPR 2018), IRN (CVPR 2019)",
          _m("cam", refine="crf"), _m("cam"), "pseudo_miou", 0.0, "cam"),
    Claim("proto", "prototypes complete CAM (prototype CAM > CAM)", "SIPE (CVPR 2022)",
          _m("prototype_cam"), _m("cam"), "seed_miou", 3.0, "prototypes"),
    Claim("c3-cam", "C3 (mutual calibration) > CAM", "thesis C3, CPMC (TCSVT 2024)",
          _m("mutual_calibration"), _m("cam"), "seed_miou", 3.0, "prototypes"),
    Claim("c3-proto", "C3 improves on the single prototype", "thesis C3, CPMC (TCSVT 2024)",
          _m("mutual_calibration"), _m("prototype_cam"), "seed_miou", 0.0, "prototypes"),
    Claim("c4-cam", "C4 (OT multi-prototypes) > CAM", "thesis C4, POT (CVPR 2025)",
          _m("multi_prototype_ot"), _m("cam"), "seed_miou", 3.0, "optimal_transport"),
    Claim("c4-proto", "C4's several prototypes beat one", "thesis C4, POT (CVPR 2025)",
          _m("multi_prototype_ot"), _m("prototype_cam"), "seed_miou", 0.0, "optimal_transport"),
    Claim("c5", "C5 closes the token gap (> patch-token CAM)", "thesis C5, OTPL (ICCV 2025)",
          _m("ot_proxy"), _m("patch_token_cam"), "seed_miou", 3.0, "transformers"),
    Claim("patch-vs-cls", "patch tokens cover more than class-token attention", "ToCo (CVPR 2023), OTPL",
          _m("patch_token_cam"), _m("class_token_attention"), "seed_miou", 0.0, "transformers"),
)
"""The claims, in the order the book teaches them. C6's claim (one row per method) and the
whole-pipeline ratio are built by :func:`claim_rows` from the C6 and final-mIoU records."""

#: C6's claim: spectral prompts + the tiny SAM improve every method's pseudo masks.
C6_STRATEGY, C6_SEGMENTER = "spectral", "tiny_sam"
#: The whole pipeline's claim: the best tag-only final mIoU reaches this share of full supervision.
RATIO_EXPECT = 0.75

#: Published PASCAL VOC 2012 figures (ImageNet / CLIP / COCO initialised networks, real images), one
#: per claim, with where they were read (README = the authors' repository; "quoted" = another
#: paper's table or an issue quoting the paper). Never mixed with ours; "not found" is said.
PUBLISHED: tuple[tuple[str, str, str], ...] = (
    ("CAM alone falls far short of full supervision",
     "CAM seeds 48.3 mIoU (train, ResNet-50); fully supervised DeepLab-v2 ResNet-101 76.4 val (77.7 with CRF)",
     "IRN (CVPR 2019), quoted in jiwoon-ahn/irn#4; DeepLab-v2 official, quoted in kazuto1011/deeplab-pytorch"),
    ("a dense CRF improves CAM pseudo masks",
     "CLIP-ES CAM 70.8 -> 75.0 with CRF (train); AffinityNet CAM 48.0 -> 58.1 with its random walk (train)",
     "CLIP-ES README (CVPR 2023); PSA README (CVPR 2018)"),
    ("prototypes complete CAM", "CAM 50.1 -> SIPE 58.7 seed mIoU (train, ResNet-50)",
     "SIPE README and its Table 4 quoted in chenqi1126/SIPE#9 (CVPR 2022)"),
    ("C3 > CAM, C3 > one prototype", "not found (CPMC, TCSVT 2024: no public code or figures we could read)", ""),
    ("C4 > CAM, several prototypes > one",
     "POT 76.1 val / 76.7 test final mIoU over CLIP-ES 73.8 / 73.9 (COCO-initialised DeepLab); seed figures not found",
     "POT (CVPR 2025) quoted in Li & Boykov's comparison table; CLIP-ES README"),
    ("C5 > patch-token CAM", "not found (OTPL, ICCV 2025); its baseline ToCo 69.8 val / 70.5 test (DeiT-B, MS + CRF)",
     "ToCo README (CVPR 2023)"),
    ("C6 improves every method", "SAM-enhanced pseudo labels: SIPE 68.8 -> 69.7 val final; S2C 78.2 val; per-method "
     "pseudo-mask gains on train not found", "SIPE README; SEPL and S2C (CVPR 2024) quoted in Li & Boykov"),
    ("the best tag-only pipeline reaches >= 75 % of full supervision",
     "IRN 63.5, ToCo 69.8, CLIP-ES 73.8 val against DeepLab-v2's 76.4-77.7: 83-95 % (our division, no paper quotes a ratio)",
     "as above"),
)


def _select(frame: pd.DataFrame, row: dict) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    for k, v in row.items():
        keep &= frame[k].astype(str) == str(v)
    return frame[keep]


#: Fields that must agree within a row (else two different runs would be mixed silently).
_PINNED = ("preset", "dataset", "backbone", "init")


def _per_seed(frame: pd.DataFrame, row: dict, metric: str) -> pd.Series:
    """``metric`` of the runs ``row`` selects, one value per seed. Several records of one seed (a
    pseudo-mask run and a whole-pipeline run of the same networks) must agree on the metric and
    on :data:`_PINNED`; a disagreement names both records."""
    runs = _select(frame, row).dropna(subset=[metric])
    for seed, group in runs.groupby("seed"):
        if len(group) < 2:
            continue
        first = group.iloc[0]
        for _, other in group.iloc[1:].iterrows():
            differs = [k for k in _PINNED if str(other[k]) != str(first[k])]
            if differs or abs(other[metric] - first[metric]) > 1e-9:
                raise ValueError(f"records {first['run_id']} and {other['run_id']} are both {row}, seed {seed}, but "
                                 f"differ in {differs or metric}: they are not the same run; keep one of them")
    return runs.drop_duplicates("seed", keep="last").set_index("seed")[metric].sort_index()


def _is_vit(method: str) -> bool:
    """Whether a method reads the ViT classifier (trained from scratch in both regimes)."""
    return method in METHODS and METHODS.get(method).classifier == "vit"


def _frames(records: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for regime, suites in REGIMES.items():
        for suite in suites:
            folder = records / suite / "runs"
            recs = load_records(folder) if folder.is_dir() else []
            out[suite] = records_frame(recs)
    return out


def _cell(m: dict, expect: float) -> str:
    if m["n"] == 0:
        return "not measured yet"
    h = holds(m, expect)
    if h is None:
        mark = f"too few seeds ({m['n']})"
    else:
        mark = "holds" if h else ("real, smaller than expected" if m["real"] and m["delta"] > 0 else "no")
    sd = "" if m["n"] < 2 else f" (sd {m['sd_a']:.1f} / {m['sd_b']:.1f})"
    return f"{m['delta']:+.1f}{sd}, {m['n']} seed{'s' if m['n'] > 1 else ''}: {mark}"


def claim_rows(records: Path = RECORDS_DIR) -> pd.DataFrame:
    """One row per claim: ``key``, ``claim``, ``source``, ``expect``, per regime the measurement
    (``<regime>_delta``, ``_sd_a``, ``_sd_b``, ``_n``, ``_holds``, ``_cell``), ``verdict``,
    and ``chapter``."""
    frames = _frames(records)
    rows = []

    def add(key: str, claim: str, source: str, expect: float, chapter: str,
            get: Callable[[str, str], tuple[pd.Series, pd.Series]], expect_text: str | None = None,
            vit_only: bool = False) -> None:
        row = {"key": key, "claim": claim, "source": source, "expect": expect_text or f">= {expect:+.0f}",
               "chapter": chapter}
        verdicts = {}
        for regime, (cpu, c6) in REGIMES.items():
            a, b = get(cpu, c6)
            m = paired_difference(a, b)
            verdicts[regime] = holds(m, expect)
            row.update({f"{regime}_{k}": v for k, v in m.items()})
            row[f"{regime}_holds"] = verdicts[regime]
            row[f"{regime}_cell"] = _cell(m, expect)
        row["verdict"] = verdict(verdicts["scratch"], verdicts["pretrained"])
        if vit_only:  # the ViT is trained from scratch in both regimes: its "pre-trained" column is a re-run
            both = {v for v in verdicts.values() if v is not None}
            row["verdict"] = "one regime only (ViT from scratch in both): " + (
                "holds" if both == {True} else "does not hold" if both == {False} else
                "too few seeds" if not both else "the re-runs disagree")
        rows.append(row)

    for c in CLAIMS:
        add(c.key, c.claim, c.source, c.expect, c.chapter,
            lambda cpu, _c6, c=c: (_per_seed(frames[cpu], c.a, c.metric),
                                   _per_seed(frames[cpu], c.b, c.b_metric or c.metric)),
            vit_only=_is_vit(c.a["method"]) and _is_vit(c.b["method"]))
    # C6 helps every method: one row per method, its own pseudo masks from the very CAMs C6 was given
    present = set(frames["c6-scratch"]["method"]) | set(frames["c6"]["method"])
    methods = [m for m in list_methods() if m in present] + sorted(present - set(list_methods()))
    for method in methods:
        sel = {"method": method, "c6": C6_STRATEGY, "c6_segmenter": C6_SEGMENTER}
        add(f"c6-{method}", f"C6 (spectral prompts + tiny SAM) improves {method}'s pseudo masks",
            "thesis C6; S2C (CVPR 2024)", 0.0, "foundation_prompts",
            lambda _cpu, c6, sel=sel: (_per_seed(frames[c6], sel, "pseudo_miou"),
                                       _per_seed(frames[c6], sel, "seed_miou")), vit_only=_is_vit(method))
    return pd.DataFrame(rows)


def pretraining_rows(records: Path = RECORDS_DIR) -> pd.DataFrame:
    """What pre-training changes, method by method: seed mIoU pre-trained (``cpu``) minus from
    scratch (``cpu-scratch``), and minus the compute-matched from-scratch control (``control``,
    when recorded), each a :func:`~s2d_core.eval.replication.paired_difference` over shared seeds."""
    frames = _frames(records)
    folder = records / "control" / "runs"
    control = records_frame(load_records(folder)) if folder.is_dir() else records_frame([])
    rows = []
    for method in [m for m in list_methods() if m in set(frames["cpu"]["method"])]:
        sel = _m(method)
        pre = _per_seed(frames["cpu"], sel, "seed_miou")
        row = {"method": method}
        for name, other in (("scratch", frames["cpu-scratch"]), ("control", control)):
            m = paired_difference(pre, _per_seed(other, sel, "seed_miou"))
            row.update({f"vs_{name}_{k}": v for k, v in m.items()})
            note = " [not pre-trained: the same recipe re-run]" if _is_vit(method) else ""
            row[f"vs_{name}_cell"] = "not measured yet" if m["n"] == 0 else note.strip(" []") + ": " * bool(note) + (
                f"{m['b']:.1f} -> {m['a']:.1f} ({m['delta']:+.1f}"
                + (f"; sd {m['sd_b']:.1f} / {m['sd_a']:.1f}" if m["n"] >= 2 else "")
                + f"; {m['n']} seed{'s' if m['n'] > 1 else ''}{', real' if m['real'] else ''})")
        rows.append(row)
    return pd.DataFrame(rows)


def pipeline_ratio(records: Path = RECORDS_DIR) -> pd.DataFrame:
    """The whole pipeline: every tag-only row with a final mIoU, as a share of the fully supervised
    network's mIoU (same init, same seeds), per regime. The page shows the row with the highest
    mean share among those with three seeds -- picked on the very numbers it reports, so an
    optimistic choice -- and says the claim holds when its mean share minus its seed std reaches
    :data:`RATIO_EXPECT`."""
    frames = _frames(records)
    out = []
    for regime, suites in REGIMES.items():
        for suite in suites:
            f = frames[suite]
            if not len(f) or "final_miou" not in f:
                continue
            f = f.dropna(subset=["final_miou"])
            for key, runs in f.groupby(["method", "refine", "c6", "c6_segmenter"], sort=False):
                runs = runs.drop_duplicates("seed", keep="last")
                ratio = runs["final_miou"] / runs["fully_supervised_miou"]
                out.append({"regime": regime, "method": key[0], "refine": key[1],
                            "c6": "none" if key[2] == "none" else f"{key[2]} + {key[3]}", "n": len(runs),
                            "final": 100 * runs["final_miou"].mean(), "final_sd": 100 * sample_std(runs["final_miou"]),
                            "fully_supervised": 100 * runs["fully_supervised_miou"].mean(),
                            "ratio": ratio.mean(), "ratio_sd": sample_std(ratio)})
    return pd.DataFrame(out)


def replicates_markdown(rows: pd.DataFrame, ratio: pd.DataFrame, records: Path | None = None) -> str:
    cells = pd.DataFrame({"claim": rows["claim"], "source": rows["source"], "expected (points)": rows["expect"],
                          "from scratch": rows["scratch_cell"], "pre-trained": rows["pretrained_cell"],
                          "verdict": rows["verdict"], "chapter": rows["chapter"]})
    md = markdown(cells)
    if len(ratio):
        best = ratio[ratio["n"] >= 3].sort_values("ratio", ascending=False).groupby("regime", sort=False).head(1)
        r = pd.DataFrame({"regime": best["regime"], "best tag-only pipeline": best["method"] +
                          best["refine"].map(lambda v: "" if v == "none" else f" + {v}") +
                          best["c6"].map(lambda v: "" if v == "none" else f" + C6 ({v})"),
                          "final mIoU": best["final"].map("{:.1f}".format) + " ± " + best["final_sd"].map("{:.1f}".format),
                          "fully supervised": best["fully_supervised"].map("{:.1f}".format),
                          "share": (100 * best["ratio"]).map("{:.0f} %".format) + " ± " +
                          (100 * best["ratio_sd"]).map("{:.0f}".format),
                          "expected": f">= {100 * RATIO_EXPECT:.0f} %",
                          "holds": (best["ratio"] - best["ratio_sd"] >= RATIO_EXPECT).map({True: "yes", False: "no"})})
        md += ("\n\nThe whole pipeline (val mIoU of a segmentation network trained on pseudo masks from tags, over "
               "three seeds, as a share of the same network trained on ground truth). The row shown is the best of "
               "the recorded pipelines, picked on these numbers (an optimistic choice); the claim holds when the "
               "mean share minus its seed std reaches 75 %:\n\n" + markdown(r))
    pre = pretraining_rows(records) if records is not None else pd.DataFrame()
    if len(pre):
        md += ("\n\nWhat pre-training changes (seed mIoU %, from scratch or the compute-matched control -> "
               "pre-trained, 2,000 training images; the ViT track is from scratch in both regimes):\n\n"
               + markdown(pd.DataFrame({"method": pre["method"], "from scratch -> pre-trained": pre["vs_scratch_cell"],
                                        "control (same compute) -> pre-trained": pre["vs_control_cell"]})))
    md += ("\n\nPublished figures (PASCAL VOC 2012, real images, ImageNet-, CLIP- or COCO-initialised networks; "
           "not comparable with the synthetic columns above):\n\n"
           + markdown(pd.DataFrame(PUBLISHED, columns=["claim", "published (VOC 2012)", "read in"])))
    return md


def plot_claims(rows: pd.DataFrame):
    """A forest plot: one line per claim, the measured difference (mIoU points) from scratch and
    pre-trained with the larger seed std of its two rows as error bar, the expected size as a tick."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.36 * len(rows)))
    y = np.arange(len(rows))
    for off, regime, style in ((-0.15, "scratch", dict(marker="o", color="0.55")),
                               (0.15, "pretrained", dict(marker="s", color="C0"))):
        d = rows[f"{regime}_delta"].to_numpy(float)
        err = np.fmax(rows[f"{regime}_sd_a"].to_numpy(float), rows[f"{regime}_sd_b"].to_numpy(float))
        ax.errorbar(d, y + off, xerr=np.nan_to_num(err), linestyle="none", capsize=2, ms=5,
                    label="from scratch" if regime == "scratch" else "pre-trained", **style)
    expect = rows["expect"].str.extract(r"([-+]?\d+)")[0].astype(float).to_numpy()
    ax.scatter(expect, y, marker="|", s=260, color="C3", label="expected at least", zorder=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, rows["claim"].str.replace("C6 (spectral prompts + tiny SAM) improves ", "C6 improves "),
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("method minus baseline, mIoU points (bars: the larger seed std of the two rows)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def write_replicates(records: Path = RECORDS_DIR, out: Path | None = None) -> Path:
    """Write ``table.md``, ``table.csv``, ``table.png`` (:func:`plot_claims`) and ``pipeline.csv``
    (:func:`pipeline_ratio`) of the claims (default ``records/replicates``)."""
    out = out or records / "replicates"
    rows, ratio = claim_rows(records), pipeline_ratio(records)
    md = ("<!-- written by `python -m benchmarks.replicates` from the cpu-scratch, c6-scratch, cpu and c6 records -->\n\n"
          "Differences in mIoU points (method minus baseline, mean over the seeds both rows have; in brackets each "
          "row's seed standard deviation). A difference is real when it exceeds both; a claim holds when it is real "
          "and at least the expected size.\n\n" + replicates_markdown(rows, ratio, records) + "\n")
    atomic_write_bytes(out / "table.md", md.encode())
    atomic_write_bytes(out / "table.csv", rows.to_csv(index=False, lineterminator="\r\n").encode())
    atomic_write_bytes(out / "pipeline.csv", ratio.to_csv(index=False, lineterminator="\r\n").encode())
    import io

    import matplotlib

    matplotlib.use("Agg")
    png = io.BytesIO()
    plot_claims(rows).savefig(png, format="png", dpi=100)
    atomic_write_bytes(out / "table.png", png.getvalue())
    return out / "table.md"


def main() -> int:
    try:
        path = write_replicates()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
