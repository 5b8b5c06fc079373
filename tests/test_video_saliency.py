"""Video saliency aggregation (per sequence, ends skipped) checked by hand and against pysodmetrics
per frame; the warping error."""

from __future__ import annotations

import numpy as np
import pytest

from s2d_core.data.config import VideoWorldConfig
from s2d_core.data.video import render_clip
from s2d_core.eval.video_saliency import VideoSaliencyMeter, warping_error


def _sequence(seed: int, T: int, size: int = 24):
    rng = np.random.default_rng(seed)
    gts = np.zeros((T, size, size), bool)
    for t in range(T):
        y, x = rng.integers(2, 10, 2)
        gts[t, y:y + 10, x:x + 8] = True
    preds = np.clip(gts * rng.uniform(0.5, 1.0) + rng.uniform(0, 0.4, gts.shape), 0, 1)
    return preds, gts


def test_aggregation_is_per_sequence_with_the_ends_skipped_matching_pysodmetrics_per_frame():
    py_sod_metrics = pytest.importorskip("py_sod_metrics")
    seqs = {"long": _sequence(0, 9), "short": _sequence(1, 4)}
    meter = VideoSaliencyMeter()
    for name, (p, g) in seqs.items():
        meter.update(name, p, g)
    got = meter.compute()
    s_per_seq, mae_per_seq, f_curves = [], [], []
    for p, g in seqs.values():
        sm, mae, fm = py_sod_metrics.Smeasure(), py_sod_metrics.MAE(), py_sod_metrics.Fmeasure()
        for t in range(1, len(p) - 1):  # first and last frame skipped
            pred8, gt8 = (p[t] * 255).astype(np.uint8), (g[t] * 255).astype(np.uint8)
            sm.step(pred8, gt8)
            mae.step(pred8, gt8)
            fm.step(pred8, gt8)
        s_per_seq.append(sm.get_results()["sm"])
        mae_per_seq.append(mae.get_results()["mae"])
        f_curves.append(fm.get_results()["fm"]["curve"])
    assert got["sequences"] == 2 and got["frames"] == 7 + 2
    assert got["s_measure"] == pytest.approx(np.mean(s_per_seq), abs=2e-3)
    assert got["mae"] == pytest.approx(np.mean(mae_per_seq), abs=2e-3)
    assert got["max_f"] == pytest.approx(np.max(np.mean(f_curves, axis=0)), abs=2e-3)
    # pooling all frames (pysodmetrics over the data set) would weigh the long sequence more
    pooled = py_sod_metrics.Smeasure()
    for p, g in seqs.values():
        for t in range(1, len(p) - 1):
            pooled.step((p[t] * 255).astype(np.uint8), (g[t] * 255).astype(np.uint8))
    assert abs(pooled.get_results()["sm"] - got["s_measure"]) > 1e-4


def test_skip_ends_is_configurable_and_inputs_are_checked():
    p, g = _sequence(2, 5)
    a, b = VideoSaliencyMeter(skip_ends=True), VideoSaliencyMeter(skip_ends=False)
    a.update("s", p, g)
    b.update("s", p, g)
    assert a.compute()["frames"] == 3 and b.compute()["frames"] == 5
    with pytest.raises(ValueError, match="at least 3 are needed"):
        VideoSaliencyMeter().update("tiny", p[:2], g[:2])
    with pytest.raises(ValueError, match=r"must both be \(T, H, W\)"):
        VideoSaliencyMeter().update("bad", p[0], g[0])
    with pytest.raises(ValueError, match="got no sequence"):
        VideoSaliencyMeter().compute()
    with pytest.raises(ValueError, match="already added"):
        a.update("s", p, g)


def test_warping_error_is_zero_for_constant_and_for_the_truth_moved_by_the_true_flow():
    c = render_clip(VideoWorldConfig(n_frames=5, noise_std=0.0), "train", 0)
    flows = c["true_flow"].astype(np.float64)
    assert warping_error(np.zeros((5, 64, 64)), flows) == 0.0          # the trivial floor
    masks = c["masks"].astype(np.float64)
    on_valid = warping_error(masks, flows, valid=c["valid"])
    assert on_valid < 0.01                                             # masks move with the flow
    shuffled = masks[[0, 3, 1, 4, 2]]
    assert warping_error(shuffled, flows) > 5 * max(on_valid, 1e-3)
    with pytest.raises(ValueError, match=r"flows \(T, 2, H, W\)"):
        warping_error(masks, flows[:, :1])
