"""Benchmark scripts run end to end on the tiny preset and write complete records."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_headroom_probe_measures_the_pipelines_own_networks(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    env = dict(os.environ, S2D_CACHE_DIR=str(cache), PYTHONUNBUFFERED="1")
    out = tmp_path / "records"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.headroom", "--preset", "tiny", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads((out / "tiny-seed0.json").read_text())
    assert rec["config"]["name"] == "tiny"
    assert rec["ratio"] == pytest.approx(rec["seed_miou"] / rec["fully_supervised_miou"])
    assert rec["seed_miou"] == max(rec["seed_curve"].values())
    assert abs(sum(rec["cam_mass"].values()) - 1.0) < 1e-6
    assert sorted(p.name for p in out.iterdir()) == ["tiny-seed0-cams.png", "tiny-seed0.json"]  # no temp files
    # not a model of its own: the probe read the pipeline's cached classifier and fully supervised network
    from s2d_core.data import get_dataset
    from s2d_core.pipeline import build_method, get_pipeline, get_segmenter

    monkeypatch.setenv("S2D_CACHE_DIR", str(cache))
    cfg, train = get_pipeline("tiny"), get_dataset("synthetic", "train", "tiny", progress=False)
    _, info = build_method("cam", train, cfg, seed=0, progress=False)
    _, seg = get_segmenter(train, None, cfg.segmenter, cfg.segmenter_train, seed=0, progress=False,
                           pretraining=cfg.pretraining)
    assert info["classifier"]["from_cache"] and seg["from_cache"]
    assert (rec["classifier"]["key"], rec["segmenter"]["key"]) == (info["classifier"]["key"], seg["key"])


def test_headroom_unknown_preset_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.headroom", "--preset", "huge", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "invalid choice: 'huge'" in proc.stderr and "Traceback" not in proc.stderr
