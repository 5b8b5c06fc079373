"""What replicates: the paired-difference rule, the verdicts, the claims table from records, the
cells-per-object probe's bookkeeping."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.params import PARAMETERS
from s2d_core.eval.replication import holds, paired_difference, verdict


def test_paired_difference_is_the_mean_of_per_seed_differences_over_shared_seeds():
    a = pd.Series({0: 0.50, 1: 0.52, 2: 0.54, 3: 0.9})   # seed 3 has no partner: left out
    b = pd.Series({0: 0.40, 1: 0.43, 2: 0.43, 5: 0.1})
    m = paired_difference(a, b)
    assert m["n"] == 3
    assert m["delta"] == pytest.approx(100 * np.mean([0.10, 0.09, 0.11]))
    assert m["sd_a"] == pytest.approx(100 * np.std([0.50, 0.52, 0.54], ddof=1))
    assert m["sd_b"] == pytest.approx(100 * np.std([0.40, 0.43, 0.43], ddof=1))
    assert m["real"] and holds(m, 3.0) and not holds(m, 12.0)


def test_a_difference_within_the_seed_spread_or_on_two_seeds_is_not_real():
    noisy = paired_difference(pd.Series({0: 0.50, 1: 0.60, 2: 0.40}), pd.Series({0: 0.48, 1: 0.55, 2: 0.40}))
    assert not noisy["real"] and holds(noisy, 0.0) is False
    two = paired_difference(pd.Series({0: 0.9, 1: 0.9}), pd.Series({0: 0.1, 1: 0.1}))
    assert two["n"] == 2 and not two["real"] and holds(two, 0.0) is None  # two seeds cannot be judged
    worse = paired_difference(pd.Series({0: 0.3, 1: 0.31, 2: 0.3}), pd.Series({0: 0.5, 1: 0.5, 2: 0.51}))
    assert worse["real"] and worse["delta"] < 0 and holds(worse, 0.0) is False
    none = paired_difference(pd.Series({0: 0.3}), pd.Series({1: 0.3}))
    assert none["n"] == 0 and math.isnan(none["delta"]) and holds(none, 0.0) is None
    with pytest.raises(TypeError, match="pandas Series indexed by seed"):
        paired_difference([0.1, 0.2], pd.Series({0: 0.1}))


@pytest.mark.parametrize("scratch, pretrained, expected", [
    (True, True, "replicated"), (False, False, "not replicated"), (True, False, "mixed"), (False, True, "mixed"),
    (None, None, "pending"), (True, None, "pending (holds from scratch)"),
    (None, False, "pending (does not hold pre-trained)"),
])
def test_verdicts(scratch, pretrained, expected):
    assert verdict(scratch, pretrained) == expected


def _record(suite_dir, method, seed, seed_miou, pseudo=None, final=None, full=None, c6="none", refine="none"):
    params = {**PARAMETERS, "method": method, "seed": seed, "c6": c6, "refine": refine}
    rid = f"{method}-{refine}-{c6}-{seed}"
    rec = {"run_id": rid, "params": params,
           "metrics": {"seed_miou": seed_miou, "pseudo_miou": seed_miou if pseudo is None else pseudo,
                       "final_miou": final, "fully_supervised_miou": full}}
    (suite_dir / "runs").mkdir(parents=True, exist_ok=True)
    (suite_dir / "runs" / f"{rid}.json").write_text(json.dumps(rec))


def test_claims_table_from_records(tmp_path):
    from benchmarks.replicates import claim_rows, pipeline_ratio, write_replicates

    for seed, (cam, proto) in enumerate([(0.50, 0.55), (0.51, 0.56), (0.49, 0.54)]):
        _record(tmp_path / "cpu-scratch", "cam", seed, cam, final=cam, full=0.8)
        _record(tmp_path / "cpu-scratch", "prototype_cam", seed, proto)
        _record(tmp_path / "cpu", "cam", seed, cam + 0.1, final=cam + 0.1, full=0.8)
        _record(tmp_path / "cpu", "prototype_cam", seed, cam + 0.1)   # no gain when pre-trained
    rows = claim_rows(tmp_path).set_index("key")
    assert rows.loc["proto", "scratch_delta"] == pytest.approx(5.0)
    assert rows.loc["proto", "verdict"] == "mixed"                   # holds from scratch, not pre-trained
    assert rows.loc["c3-cam", "verdict"] == "pending"                # no C3 record in either regime
    assert rows.loc["cam-gap", "verdict"] == "replicated"            # 80 vs 50 and 60
    assert not any(k.startswith("c6-") for k in rows.index)          # no C6 records, no C6 rows
    ratio = pipeline_ratio(tmp_path)
    assert set(ratio["regime"]) == {"scratch", "pretrained"}
    assert ratio.set_index("regime").loc["pretrained", "ratio"] == pytest.approx(0.6 / 0.8)
    md = write_replicates(tmp_path).read_text()
    assert "| prototypes complete CAM (prototype CAM > CAM) | SIPE (CVPR 2022) | >= +3 | +5.0" in md
    assert (tmp_path / "replicates" / "table.png").stat().st_size > 0


def test_cells_per_object_counts_stride_cells():
    from benchmarks.cells_probe import STRIDE, cells_per_object

    mask = torch.zeros(64, 64, dtype=torch.long)
    mask[:16, :16] = 1          # 256 px
    mask[32:64, 32:64] = 2      # 1024 px
    mask[0, 63] = 255           # void is not an object
    data = [{"mask": mask}]
    assert cells_per_object(data, 1.0) == pytest.approx((256 + 1024) / 2 / STRIDE ** 2)
    assert cells_per_object(data, 2.0) == pytest.approx(4 * (256 + 1024) / 2 / STRIDE ** 2)


def test_c6_table_names_an_unknown_suite(capsys):
    from benchmarks.c6_table import main

    assert main(["c7"]) == 2
    assert "unknown C6 suite 'c7'" in capsys.readouterr().err


def test_probe_markdown_gives_each_gap_to_cam():
    from benchmarks.cells_probe import METHODS, probe_markdown

    rows = [{"regime": r, "method": m, "scale": s, "seed_miou": 0.5 + 0.01 * i * s}
            for r in ("scratch", "pretrained") for s in (1.0, 2.0) for i, m in enumerate(METHODS)]
    md = probe_markdown(json.loads(json.dumps({"n_images": 10, "seed": 0, "scales": [1.0, 2.0],
                                               "cells_per_object": [12.0, 48.0], "rows": rows})))
    assert "| x2 | 48 | 50.0 | 52.0 | 54.0 | 56.0 | +2.0 | +4.0 | +6.0 |" in md
    assert md.count("**scratch**") == md.count("**pretrained**") == 1


def test_same_networks_in_both_regimes_and_disagreeing_records(tmp_path):
    from benchmarks.replicates import claim_rows

    for suite in ("cpu-scratch", "cpu"):
        for seed, (vit, c5) in enumerate([(0.40, 0.30), (0.42, 0.31), (0.41, 0.29)]):
            _record(tmp_path / suite, "patch_token_cam", seed, vit)
            _record(tmp_path / suite, "ot_proxy", seed, c5)
    rows = claim_rows(tmp_path).set_index("key")
    assert rows.loc["c5", "verdict"] == "one regime only (ViT from scratch in both): does not hold"
    # a second record of one seed that disagrees is named, not silently replaced
    _record(tmp_path / "cpu", "ot_proxy", 0, 0.5, c6="none", refine="none")
    rec = tmp_path / "cpu" / "runs" / "ot_proxy-none-none-0.json"
    rec.rename(rec.with_name("zz-other.json"))
    data = json.loads((tmp_path / "cpu" / "runs" / "zz-other.json").read_text())
    data["run_id"] = "zz-other"
    (tmp_path / "cpu" / "runs" / "zz-other.json").write_text(json.dumps(data))
    _record(tmp_path / "cpu", "ot_proxy", 0, 0.30)
    with pytest.raises(ValueError, match="not the same run"):
        claim_rows(tmp_path)
