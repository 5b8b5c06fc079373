"""The benchmark runner: suites, parameter checks, resumable runs, failures, tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.cli import main
from benchmarks.execute import run_suite
from benchmarks.params import PARAMETERS, run_id, validate_params
from benchmarks.reports import aggregate, markdown_table, plot_table, records_frame, write_tables
from benchmarks.suites import SuiteError, load_suite
from s2d_core.pipeline.run import INIT_BEFORE

RECORDS = Path(__file__).resolve().parents[1] / "benchmarks" / "records"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))  # the kernels inherit it


@pytest.mark.parametrize("name", ["smoke", "cpu", "cpu-scratch", "gpu", "voc", "c6", "c6-scratch", "control", "video_smoke",
                                  "video", "video_davis", "video_davsod",
                                  "spml_smoke"])
def test_shipped_suites_load(name):
    s = load_suite(name)
    assert s.runs and s.notebook.is_file()
    assert len({run_id(r) for r in s.runs}) == len(s.runs)  # ids are unique
    if name in ("cpu", "cpu-scratch"):
        assert sorted({r["seed"] for r in s.runs}) == [0, 1, 2]


@pytest.mark.parametrize("params, match", [
    ({"method": "magic"}, "unknown method 'magic'.*mutual_calibration \\(c3, cpmc\\)"),
    ({"refine": "grabcut"}, "refine must be"),
    ({"dataset": "voc"}, "needs dataset_root"),
    ({"dataset": "voc", "dataset_root": "/no/such/VOC2012"}, "does not exist"),
    ({"device": "tpu"}, "device"),
    ({"backbone": "resnet_banana"}, "unknown timm backbone"),
    ({"overrides": {"classifer": {"epochs": 1}}}, "unknown PipelineConfig field 'classifer'"),
    ({"overrides": {"classifier_train": {"epochs": 0}}}, "epochs must be >= 1"),
    ({"colour": "red"}, "unknown parameter"),
    ({"preset": "voc"}, "has no synthetic data"),
    ({"c6": "clicks"}, "unknown enhancer 'clicks'.*spectral_prompts \\(c6, spectral\\)"),
    ({"c6": "spectral", "c6_segmenter": "grabcut"}, "c6_segmenter must be"),
    ({"c6": "spectral", "c6_segmenter": "sam"}, "needs sam_checkpoint"),
    ({"c6": "spectral", "c6_segmenter": "sam", "sam_checkpoint": "/no/sam_vit_b.pth"}, "is not a file"),
    ({"c6_segmenter": "random_walker"}, "only apply with c6 set"),
    ({"c6": "spectral", "refine": "crf"}, "does not apply to C6"),
    ({"final": "no"}, "final must be true or false"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        validate_params({"preset": "tiny", **params})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_missing_gpu_is_named():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        validate_params({"preset": "tiny", "device": "cuda"})


def test_suite_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmatrix: {seed: [0]}\ncolour: red\n")
    with pytest.raises(SuiteError, match="unknown key"):
        load_suite(bad)
    bad.write_text("name: bad\nmatrix: {seeds: [0]}\n")
    with pytest.raises(SuiteError, match="unknown parameter"):
        load_suite(bad)
    bad.write_text("name: bad\n")
    with pytest.raises(SuiteError, match="defines no runs"):
        load_suite(bad)
    with pytest.raises(SuiteError, match="known suites"):
        load_suite("no-such-suite")


def _suite_file(tmp_path, runs: str) -> Path:
    p = tmp_path / "mixed.yaml"
    p.write_text("name: mixed\nnotebook: cam_pipeline\ndefaults: {preset: tiny, device: cpu}\n"
                 "matrix: {seed: [0]}\nruns:\n" + runs)
    return p


def test_suite_runs_resumes_and_survives_failures(tmp_path):
    records, logs = tmp_path / "records", tmp_path / "logs"
    suite = load_suite(_suite_file(tmp_path, (
        "  - {method: magic}\n"                                    # rejected before a kernel starts
        "  - {seed: 1, overrides: {classifier_train: {batch_size: 64}}}\n"  # fails inside the notebook
    )))
    st = run_suite(suite, records, logs, progress=False)
    assert len(st["done"]) == 1 and not st["skipped"]
    reasons = dict(st["failed"])
    assert any("unknown method 'magic'" in m for m in reasons.values())
    assert any("fewer than batch_size=64" in m for m in reasons.values())
    # only the good run left a record, and it is complete JSON
    files = sorted(records.glob("*"))
    assert [f.name for f in files] == [st["done"][0] + ".json"]
    rec = json.loads(files[0].read_text())
    assert rec["params"]["seed"] == 0 and 0 <= rec["metrics"]["seed_miou"] <= 1
    assert set(rec["seconds"]) == {"classifier", "cams", "pseudo_masks", "segmenter", "fully_supervised"}
    assert (logs / f"{st['done'][0]}.ipynb").is_file()
    # a second pass skips what is recorded and retries only the failures
    st2 = run_suite(suite, records, logs, progress=False)
    assert st2["skipped"] == st["done"] and len(st2["failed"]) == 2 and not st2["done"]


def test_smoke_suite_and_tables(tmp_path, capsys):
    records = tmp_path / "smoke" / "runs"
    code = main(["run", "smoke", "--records", str(records), "--logs", str(tmp_path / "logs")])
    assert code == 0
    out = capsys.readouterr().out
    assert "5 run, 0 already recorded, 0 failed" in out
    for ext in ("csv", "md", "png"):
        assert (records.parent / f"table.{ext}").stat().st_size > 0
    md = (records.parent / "table.md").read_text()
    assert "| cam | none | none | 0 |" in md and "| cam | crf | none | 0 |" in md  # rows, then the seeds averaged
    assert "| multi_prototype_ot | none | none | 0 |" in md and "| ot_proxy | none | none | 0 |" in md
    assert "| cam | none | spectral | 0 |" in md  # the C6 row, with the promptable stage timed
    rec = [json.loads(p.read_text()) for p in records.glob("*c6spectral*.json")][0]
    assert "promptable" in rec["seconds"] and rec["params"]["c6"] == "spectral" and rec["metrics"]["final_miou"] is not None
    assert main(["run", "smoke", "--records", str(records), "--logs", str(tmp_path / "logs")]) == 0
    assert "0 run, 5 already recorded" in capsys.readouterr().out
    assert main(["run", "smoke", "--records", str(records), "--logs", str(tmp_path / "logs"), "--only=-c4-,-c5-"]) == 0
    assert "0 run, 2 already recorded" in capsys.readouterr().out


def test_aggregate_mean_and_std():
    recs = [{"params": {**PARAMETERS, "seed": s}, "metrics": {"seed_miou": v, "final_miou": v / 2},
             "seconds": {"classifier": 60.0}} for s, v in enumerate([0.4, 0.5, 0.6])]
    table = aggregate(records_frame(recs), ["method", "refine"])
    assert len(table) == 1
    row = table.iloc[0]
    assert row["n"] == 3 and row["seeds"] == "0 1 2"
    assert row["seed_miou_mean"] == pytest.approx(0.5) and row["seed_miou_std"] == pytest.approx(0.1)
    assert row["final_miou_mean"] == pytest.approx(0.25)
    assert "pseudo_miou_mean" not in table  # measured by no run: no column
    assert "50.0 ± 10.0" in markdown_table(table, ["method", "refine"])


@pytest.mark.parametrize("n_methods", [3, 12])
def test_plot_draws_one_bar_per_row_and_metric(n_methods):
    import matplotlib.pyplot as plt

    recs = [{"params": {**PARAMETERS, "method": f"m{i:02d}", "seed": 0},
             "metrics": {"seed_miou": 0.01 * (i + 1), "pseudo_miou": 0.02 * (i + 1)}, "seconds": {}}
            for i in range(n_methods)]
    table = aggregate(records_frame(recs), ["method", "refine"])
    fig = plot_table(table, ["method", "refine"])
    bars = [p for ax in fig.axes for p in ax.patches]
    assert len(bars) == 2 * n_methods  # two metrics measured
    if n_methods > 8:  # one panel of horizontal bars per metric, rows labelled on the y axis
        assert len(fig.axes) == 2
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"m{i:02d}" for i in range(n_methods)]
        assert sorted(round(p.get_width(), 6) for p in fig.axes[1].patches) == [2.0 * (i + 1) for i in range(n_methods)]
    else:  # grouped bars and a legend naming each row ("none" left out of the label)
        assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [f"m{i:02d}" for i in range(n_methods)]
        assert sorted(round(p.get_height(), 6) for p in bars) == sorted(
            [1.0 * (i + 1) for i in range(n_methods)] + [2.0 * (i + 1) for i in range(n_methods)])
    plt.close(fig)


def test_table_without_records_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no records"):
        write_tables(load_suite("smoke"), tmp_path / "empty")


def test_voc_run_on_a_fixture_tree(tmp_path):
    """The real-data path (images of different sizes, streamed CAMs, random crops) end to end."""
    from voc_fixture import _build

    tree = _build(tmp_path / "data")
    small = {"init": "scratch"}
    suite_file = tmp_path / "voc-fixture.yaml"
    suite_file.write_text(
        "name: voc-fixture\nnotebook: cam_pipeline\n"
        f"defaults: {{preset: voc, dataset: voc, dataset_root: '{tree.voc}', device: cpu}}\n"
        "runs:\n  - overrides: {classifier: " + json.dumps({**small, "backbone": "resnet10t", "output_stride": 8})
        + ", segmenter: " + json.dumps({**small, "backbone": "resnet10t", "output_stride": 8, "aspp_rates": [1]})
        + ", classifier_train: {epochs: 1, batch_size: 2, crop_size: 16}"
        + ", segmenter_train: {epochs: 1, batch_size: 2, crop_size: 16}, cam: {scales: [1.0], flip: true}}\n")
    st = run_suite(load_suite(suite_file), tmp_path / "records", tmp_path / "logs", progress=False)
    assert not st["failed"], st["failed"]
    rec = json.loads(next((tmp_path / "records").glob("*.json")).read_text())
    assert rec["data"]["name"] == "VOCSegmentation"
    assert len(rec["metrics"]["final_iou"]) == 21


def test_overrides_merge_deeply_and_refine_is_the_crf_switch():
    from benchmarks.params import run_config

    cfg = run_config({"preset": "tiny", "refine": "none",
                           "overrides": {"pseudo": {"crf": True, "crf_config": {"iterations": 3}}}})
    assert cfg.pseudo.crf is False  # a row labelled "none" never uses a CRF
    assert cfg.pseudo.crf_config.iterations == 3 and cfg.pseudo.crf_config.gt_prob == 0.7  # nested defaults kept
    assert run_config({"preset": "tiny", "refine": "crf"}).pseudo.crf is True
    with pytest.raises(ValueError, match="lr must be a number.*1.0e-3"):
        run_config({"preset": "tiny", "overrides": {"classifier_train": {"lr": "1e-3"}}})


def test_group_by_must_name_parameters(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("name: g\nmatrix: {seed: [0]}\ngroup_by: [methods]\n")
    with pytest.raises(SuiteError, match="group_by names unknown parameter"):
        load_suite(p)


def test_forced_rerun_that_fails_keeps_the_old_record(tmp_path, monkeypatch):
    """No kernel: papermill is replaced by a stand-in that writes a record or fails."""
    import papermill

    from benchmarks.execute import execute_run

    suite = load_suite("smoke")
    params = suite.runs[0]
    records, logs = tmp_path / "runs", tmp_path / "logs"

    def succeed(src, out, parameters, **kw):
        Path(parameters["record_path"]).write_text(json.dumps({"run_id": parameters["run_id"], "ok": 1}))

    def fail_midway(src, out, parameters, **kw):
        raise RuntimeError("killed")

    def forget(src, out, parameters, **kw):
        pass

    monkeypatch.setattr(papermill, "execute_notebook", succeed)
    rec = execute_run(suite, params, records, logs)
    assert json.loads(rec.read_text())["ok"] == 1
    monkeypatch.setattr(papermill, "execute_notebook", fail_midway)
    st = run_suite(suite, records, logs, only=run_id(params), force=True, progress=False)
    assert st["failed"] and json.loads(rec.read_text())["ok"] == 1  # the earlier result survives
    monkeypatch.setattr(papermill, "execute_notebook", forget)
    with pytest.raises(RuntimeError, match="wrote no record"):
        execute_run(suite, params, records, logs)
    assert [p.name for p in records.iterdir()] == [rec.name]


def test_tables_leave_out_records_of_other_runs(tmp_path, capsys):
    suite = load_suite("smoke")
    runs = tmp_path / "runs"
    runs.mkdir()
    good = {"run_id": run_id(suite.runs[0]), "params": {**PARAMETERS, **suite.runs[0]},
            "metrics": {"seed_miou": 0.5}, "seconds": {}}
    stray = {**good, "run_id": "old-run", "metrics": {"seed_miou": 0.9}}
    (runs / "a.json").write_text(json.dumps(good))
    (runs / "b.json").write_text(json.dumps(stray))
    write_tables(suite, runs)
    assert "1 record(s)" in capsys.readouterr().err
    assert "| 50.0 |" in (tmp_path / "table.md").read_text()


def test_committed_records_keep_their_ids():
    """New parameters at their defaults leave the ids (file names) of older records unchanged; a
    record that does not list ``init`` predates it and was made from scratch."""
    from benchmarks.params import kind_of

    recs = sorted(RECORDS.glob("*/runs/*.json"))
    assert recs
    for path in recs:
        r = json.loads(path.read_text())
        kind = kind_of(load_suite(path.parent.parent.name).notebook)  # each suite's runs speak its notebook's ids
        params = {"init": INIT_BEFORE, **r["params"]} if kind.run_id is run_id else r["params"]
        assert kind.run_id(params) == r["run_id"] == path.stem, path.name


def test_every_name_of_a_method_gives_the_run_its_recorded_id():
    """Suites may name methods and enhancers by their registry names or any alias: one run, one id."""
    base = {"preset": "cpu", "seed": 0}
    assert run_id({**base, "method": "mutual_calibration"}) == run_id({**base, "method": "c3"}) \
        == run_id({**base, "method": "CPMC"})
    assert run_id({**base, "method": "mutual_calibration"}).startswith("cpu-c3-synthetic-seed0-")
    assert run_id({**base, "method": "cam", "c6": "spectral_prompts", "final": False}) == \
        run_id({**base, "method": "cam", "c6": "spectral", "final": False})
    assert run_id({**base, "method": "prototype_cam"}) != run_id({**base, "method": "cam"})


def test_c6_parameters_join_the_id_only_when_used():
    base = {"preset": "cpu", "method": "cam", "seed": 0}
    assert run_id(base) == run_id({**base, "c6": "none", "final": True})
    rid = run_id({**base, "c6": "spectral", "final": False})
    assert rid.startswith("cpu-cam-c6spectral-tiny_sam-pseudo-synthetic-seed0-")
    a = run_id({**base, "c6": "spectral", "c6_segmenter": "sam", "sam_checkpoint": "/a/sam_vit_b_01ec64.pth"})
    b = run_id({**base, "c6": "spectral", "c6_segmenter": "sam", "sam_checkpoint": "~/b/sam_vit_b_01ec64.pth"})
    assert a == b  # the checkpoint's file name counts, not its folder


def test_c6_gain_table_pairs_each_run_with_its_own_cams_and_rejects_disagreeing_records():
    from benchmarks.c6_table import gain_markdown, gain_tables

    def rec(method, seed, pseudo, c6="none", seg="tiny_sam", final=None, rid="x", seeds=None):
        p = {**PARAMETERS, "method": method, "seed": seed, "c6": c6, "c6_segmenter": seg}
        seeds = pseudo if seeds is None else seeds
        return {"run_id": rid, "params": p, "metrics": {"seed_miou": seeds, "pseudo_miou": pseudo, "final_miou": final}}

    base = [rec("cam", 0, 0.50, final=0.49), rec("cam", 1, 0.48, final=0.47), rec("cam", 2, 0.40)]
    # the C6 runs' own CAMs: seed 0 from the same network as the cpu suite (0.50), seed 1 retrained elsewhere (0.46)
    c6 = [rec("cam", 0, 0.55, "spectral", seeds=0.50), rec("cam", 1, 0.53, "spectral", seeds=0.46),
          rec("cam", 0, 0.52, "box", seeds=0.50), rec("cam", 0, 0.55, "spectral", final=0.57, seeds=0.50),
          rec("cam", 1, 0.53, "spectral", final=0.56, seeds=0.46)]
    gain, finals = gain_tables(records_frame(base), records_frame(c6))
    assert gain.loc[0, "seeds"] == "0 1"  # seed 2 has no C6 record
    md = gain_markdown(gain, finals)
    # own masks: the mean of the runs' own seeds (50, 46), not of the cpu suite's (50, 48)
    assert "| cam | 0 1 | 48.0 ± 2.8 | 54.0 ± 1.4 (+6.0) | 52.0 (+2.0) [seed 0] |" in md
    # seed 1's network is not the cpu suite's: no own final to compare with
    assert "| cam | spectral + tiny sam | 0 1 | (no run of this network) | 56.5 |" in md
    gain0, finals0 = gain_tables(records_frame(base), records_frame(c6[:4]))
    assert "| cam | spectral + tiny sam | 0 | 49.0 | 57.0 (+8.0) |" in gain_markdown(gain0, finals0)
    with pytest.raises(ValueError, match="bad: pseudo-mask mIoU 0.6000 differs from 0.5300"):
        gain_tables(records_frame(base), records_frame(c6 + [rec("cam", 1, 0.60, "spectral", final=0.6, rid="bad")]))


def test_committed_tables_are_regenerated_byte_for_byte(tmp_path):
    """The reports rebuilt from the committed records equal the committed tables, byte for byte."""
    from benchmarks.c6_table import write_gain

    names = [n for n in ("cpu", "cpu-scratch", "c6", "c6-scratch") if (RECORDS / n / "runs").is_dir()]
    assert {"cpu-scratch", "c6-scratch"} <= set(names)
    for name in names:
        assert (RECORDS / name / "table.md").is_file(), \
            f"suite {name} has committed records but no table: run `python -m benchmarks table {name}` and commit it"
        write_tables(load_suite(name), RECORDS / name / "runs", tmp_path / name)
        for table in ("table.md", "table.csv"):
            assert (tmp_path / name / table).read_bytes() == (RECORDS / name / table).read_bytes(), f"{name}/{table}"
    for c6 in (n for n in names if n.startswith("c6")):
        base = {"c6": "cpu", "c6-scratch": "cpu-scratch"}[c6]
        write_gain(RECORDS / base / "runs", RECORDS / c6 / "runs", tmp_path / c6, suite=c6)
        for table in ("gain.md", "gain.csv"):
            assert (tmp_path / c6 / table).read_bytes() == (RECORDS / c6 / table).read_bytes(), f"{c6}/{table}"


def test_a_video_suite_runs_its_own_notebook_and_tables(tmp_path):
    """A suite whose notebook is video_saliency speaks the video parameters, ids and tables."""
    suite = load_suite("video_smoke")
    with pytest.raises(SuiteError, match="unknown parameter.*refine"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: bad\nnotebook: video_saliency\nruns: [{method: scribbles, refine: crf}]\n")
        load_suite(bad)
    st = run_suite(suite, tmp_path / "runs", tmp_path / "logs", only="-scribbles-scratch", progress=False)
    assert len(st["done"]) == 1 and not st["failed"], st
    rec = json.loads(next((tmp_path / "runs").glob("video_tiny-scribbles-scratch-seed0-*.json")).read_text())
    assert rec["suite"] == "video_smoke" and 0 <= rec["metrics"]["s_measure"] <= 1
    # seed 0's predictions lie beside the record, under the record's name (the chapter reads them)
    with np.load(tmp_path / "runs" / f"{rec['run_id']}.npz") as z:
        assert z["saliency"].dtype == np.uint8 and len(z["names"]) == len(rec["per_sequence"])
    assert not list((tmp_path / "runs").glob(".*"))  # no pending file left behind
    paths = write_tables(suite, tmp_path / "runs", tmp_path)
    assert "| scribbles | 0 |" in paths["md"].read_text()
