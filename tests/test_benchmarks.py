"""Benchmark scripts run end to end on the tiny preset and write complete records."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_headroom_probe_writes_a_complete_record(tmp_path):
    env = dict(os.environ, S2D_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    out = tmp_path / "records"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.headroom", "--preset", "tiny", "--epochs", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads((out / "tiny-seed0.json").read_text())
    assert rec["config"]["name"] == "tiny"
    assert 0.0 <= rec["seed_miou"] <= 1.0 and 0.0 <= rec["fully_supervised_miou"] <= 1.0
    assert abs(sum(rec["cam_mass"].values()) - 1.0) < 1e-6
    assert rec["seed_miou"] == max(rec["seed_curve"].values())
    assert sorted(p.name for p in out.iterdir()) == ["tiny-seed0-cams.png", "tiny-seed0.json"]  # no temp files


def test_headroom_unknown_preset_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.headroom", "--preset", "huge", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "invalid choice: 'huge'" in proc.stderr and "Traceback" not in proc.stderr
