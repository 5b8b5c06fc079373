"""Tests for :mod:`s2d_core.eval.saliency`, cross-checked against ``pysodmetrics``.

``pysodmetrics`` (imported as ``py_sod_metrics``) is the implementation reviewers
use; our code is independent, so agreement on random images and on the edge
cases is the evidence that both implement the same definitions.

Feeding both sides the same numbers: ``pysodmetrics`` expects 8-bit images. For
uint8 predictions both receive the identical array. For float predictions ``p``
it receives ``p * 255`` (a float array, which it divides by 255 again), so the
two sides differ only by float rounding (~1e-16); a quantisation step would
instead move values by up to 1/510 and is not what we want to test.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest

from s2d_core.eval.saliency import (
    N_THRESHOLDS,
    SaliencyMeter,
    adaptive_emeasure,
    adaptive_fmeasure,
    emeasure_curve,
    fmeasure_curve,
    mae,
    smeasure,
)

try:
    import py_sod_metrics as psm
except ImportError:  # pragma: no cover - the dev extra installs it
    psm = None

needs_psm = pytest.mark.skipif(psm is None, reason="pysodmetrics is not installed")

# pysodmetrics' Fmeasure warns that it is deprecated in favour of FmeasureV2;
# the old class is the one whose outputs are the published protocol.
pytestmark = pytest.mark.filterwarnings("ignore:This class will be removed:UserWarning")

# Both sides compute the same quantities in float64; observed differences are
# ~1e-16. 1e-6 leaves room for BLAS / summation-order changes across versions.
ATOL = 1e-6

KEYS = ("mae", "max_f", "mean_f", "adp_f", "s_measure", "max_e", "mean_e", "adp_e")


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def blob_mask(rng: np.random.Generator, h: int, w: int, n_blobs: int, scale: float) -> np.ndarray:
    """Union of ``n_blobs`` random ellipses, radii ~ ``scale`` * image size."""
    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
        ry, rx = rng.uniform(0.5, 1.5, size=2) * scale * np.array([h, w])
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return mask


def noisy_prediction(rng: np.random.Generator, gt: np.ndarray, noise: float) -> np.ndarray:
    """A float map in [0, 1] that correlates with ``gt`` (``noise`` = 1: pure noise)."""
    pred = (1.0 - noise) * gt + noise * rng.random(gt.shape)
    return np.clip(pred, 0.0, 1.0)


def random_cases() -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """(id, float prediction, bool gt) for several sizes, blob sizes and noise levels."""
    rng = np.random.default_rng(20240611)
    cases = []
    for h, w, n_blobs, scale, noise in [
        (40, 50, 1, 0.25, 1.0),   # pure noise
        (40, 50, 2, 0.10, 0.6),   # two small blobs
        (64, 64, 1, 0.35, 0.4),   # one large blob
        (64, 64, 3, 0.15, 0.8),
        (33, 47, 1, 0.05, 0.5),   # tiny object, odd sizes
        (48, 36, 2, 0.40, 0.2),   # large, nearly clean
    ]:
        gt = blob_mask(rng, h, w, n_blobs, scale)
        assert 0 < gt.sum() < gt.size
        cases.append((f"{h}x{w}-b{n_blobs}-s{scale}-n{noise}", noisy_prediction(rng, gt, noise), gt))
    return cases


RANDOM_CASES = random_cases()


def edge_cases() -> List[Tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    h, w = 40, 50
    blob = blob_mask(rng, h, w, 1, 0.25)
    empty = np.zeros((h, w), dtype=bool)
    full = np.ones((h, w), dtype=bool)
    rand = rng.random((h, w))
    single = np.zeros((h, w), dtype=bool)
    single[10, 20] = True
    return [
        ("empty-gt-random-pred", rand, empty),
        ("empty-gt-zero-pred", np.zeros((h, w)), empty),
        ("full-gt-random-pred", rand, full),
        ("full-gt-one-pred", np.ones((h, w)), full),
        ("constant-0.3", np.full((h, w), 0.3), blob),
        ("constant-0", np.zeros((h, w)), blob),
        ("constant-1", np.ones((h, w)), blob),
        ("perfect", blob.astype(np.float64), blob),
        ("inverted", 1.0 - blob, blob),
        ("single-pixel-gt", rand, single),
        ("single-pixel-gt-perfect", single.astype(np.float64), single),
    ]


EDGE_CASES = edge_cases()
ALL_CASES = RANDOM_CASES + EDGE_CASES


# --------------------------------------------------------------------------- #
# Reference
# --------------------------------------------------------------------------- #
def to_reference(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The (pred, gt) pair in pysodmetrics' 0..255 convention."""
    ref_pred = pred if pred.dtype == np.uint8 else pred * 255.0
    return ref_pred, gt.astype(np.uint8) * 255


def reference_metrics(pairs) -> Dict[str, object]:
    """Per-dataset numbers and curves from pysodmetrics, accumulated image by image."""
    m, f, s, e = psm.MAE(), psm.Fmeasure(beta=0.3), psm.Smeasure(alpha=0.5), psm.Emeasure()
    for pred, gt in pairs:
        ref_pred, ref_gt = to_reference(pred, gt)
        for metric in (m, f, s, e):
            metric.step(ref_pred, ref_gt)
    fr, er = f.get_results(), e.get_results()
    # pysodmetrics stores curves from threshold 255 down to 0; ours go up.
    f_curve = np.flip(fr["fm"]["curve"])
    e_curve = np.flip(er["em"]["curve"])
    return {
        "mae": m.get_results()["mae"],
        "max_f": f_curve.max(),
        "mean_f": f_curve.mean(),
        "adp_f": fr["fm"]["adp"],
        "s_measure": s.get_results()["sm"],
        "max_e": e_curve.max(),
        "mean_e": e_curve.mean(),
        "adp_e": er["em"]["adp"],
        "f_curve": f_curve,
        "p_curve": np.flip(fr["pr"]["p"]),
        "r_curve": np.flip(fr["pr"]["r"]),
        "e_curve": e_curve,
    }


def assert_close(name: str, ours, ref) -> None:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} vs reference {ref.shape}"
    assert np.all(np.isfinite(ours)), f"{name}: non-finite values {ours}"
    diff = float(np.max(np.abs(ours - ref)))
    assert diff <= ATOL, f"{name}: max |ours - reference| = {diff:.3g} > {ATOL}"


# --------------------------------------------------------------------------- #
# Per-image agreement with pysodmetrics
# --------------------------------------------------------------------------- #
@needs_psm
@pytest.mark.parametrize("case_id,pred,gt", ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_per_image_functions_match_reference(case_id, pred, gt):
    ref = reference_metrics([(pred, gt)])
    precision, recall, f = fmeasure_curve(pred, gt)
    e = emeasure_curve(pred, gt)
    assert precision.shape == recall.shape == f.shape == e.shape == (N_THRESHOLDS,)

    assert_close("mae", mae(pred, gt), ref["mae"])
    assert_close("precision curve", precision, ref["p_curve"])
    assert_close("recall curve", recall, ref["r_curve"])
    assert_close("F curve", f, ref["f_curve"])
    assert_close("adaptive F", adaptive_fmeasure(pred, gt), ref["adp_f"])
    assert_close("S-measure", smeasure(pred, gt), ref["s_measure"])
    assert_close("E curve", e, ref["e_curve"])
    assert_close("adaptive E", adaptive_emeasure(pred, gt), ref["adp_e"])


@needs_psm
@pytest.mark.parametrize("case_id,pred,gt", RANDOM_CASES[:3], ids=[c[0] for c in RANDOM_CASES[:3]])
def test_uint8_inputs_match_reference(case_id, pred, gt):
    """8-bit prediction and 0/255 mask, handed to both sides unchanged."""
    pred8 = np.round(pred * 255).astype(np.uint8)
    gt8 = gt.astype(np.uint8) * 255
    ref = reference_metrics([(pred8, gt)])
    meter = SaliencyMeter()
    meter.update(pred8, gt8)
    ours = meter.compute()
    for key in KEYS:
        assert_close(key, ours[key], ref[key])


# --------------------------------------------------------------------------- #
# Dataset protocol
# --------------------------------------------------------------------------- #
@needs_psm
def test_meter_matches_reference_on_a_dataset():
    pairs = [(pred, gt) for _, pred, gt in ALL_CASES]
    meter = SaliencyMeter()
    for pred, gt in pairs:
        meter.update(pred, gt)
    ours = meter.compute()
    ref = reference_metrics(pairs)

    assert set(ours) == set(KEYS)
    assert len(meter) == len(pairs)
    for key in KEYS:
        assert isinstance(ours[key], float), key
        assert_close(key, ours[key], ref[key])


def test_meter_averages_curves_before_taking_the_max():
    """max_f is the max of the mean curve, not the mean of per-image maxima."""
    meter = SaliencyMeter()
    curves = []
    for _, pred, gt in RANDOM_CASES:
        meter.update(pred, gt)
        curves.append(fmeasure_curve(pred, gt)[2])
    curves = np.stack(curves)
    out = meter.compute()
    assert out["max_f"] == pytest.approx(curves.mean(axis=0).max(), abs=1e-12)
    assert out["mean_f"] == pytest.approx(curves.mean(), abs=1e-12)
    assert out["max_f"] <= curves.max(axis=1).mean() + 1e-12


# --------------------------------------------------------------------------- #
# Sanity without the reference
# --------------------------------------------------------------------------- #
def test_perfect_and_inverted_predictions():
    _, _, gt = RANDOM_CASES[2]
    good = SaliencyMeter()
    good.update(gt.astype(np.float64), gt)
    bad = SaliencyMeter()
    bad.update(1.0 - gt, gt)
    g, b = good.compute(), bad.compute()
    assert g["mae"] == 0.0 and b["mae"] == 1.0
    assert g["max_f"] == pytest.approx(1.0) and g["adp_f"] == pytest.approx(1.0)
    assert g["s_measure"] == pytest.approx(1.0)
    # The reference E-measure divides by WH - 1, so a perfect map scores WH / (WH - 1).
    assert g["adp_e"] == pytest.approx(gt.size / (gt.size - 1))
    # Inverted: mean(gt) = 0.49, so 2 * mean(pred) > 1 and the adaptive threshold is capped at 1: the
    # adaptive map is the background, with no TP: adaptive F = 0.
    # S: the prediction is 0 on the object and 1 on the background, so both object terms are 0; each
    # quadrant holds object and background, and x = 1 - y gives SSIM = -2 x_mean y_mean / (x_mean^2 +
    # y_mean^2) < 0, so S = max(0, negative) = 0. E: phi_M = -phi_G gives xi = -1, (1 + xi)^2 / 4 = 0.
    assert b["adp_f"] == 0.0 and b["s_measure"] == 0.0 and b["adp_e"] == pytest.approx(0.0, abs=1e-12)
    # At threshold 0 every pixel is predicted: phi_M = 0, xi = 0, each pixel scores 1/4 (the max E).
    assert b["max_e"] == pytest.approx(gt.size / (4 * (gt.size - 1)))
    # An inverted map still reaches, at threshold 0 (everything predicted), P = mean(gt)
    # and R = 1, so its max F is that of the trivial all-foreground map.
    mu = gt.mean()
    assert b["max_f"] == pytest.approx(1.3 * mu / (0.3 * mu + 1.0))


def test_input_conventions_agree():
    """float [0, 1], uint8 [0, 255], bool gt, 0/1 gt and 0/255 gt give the same numbers."""
    _, pred, gt = RANDOM_CASES[1]
    pred8 = (np.arange(pred.size).reshape(pred.shape) % 256).astype(np.uint8)
    pred_float = pred8 / 255.0
    for g in (gt, gt.astype(np.uint8), gt.astype(np.uint8) * 255, gt.astype(np.float32)):
        assert mae(pred_float, g) == pytest.approx(mae(pred8, gt), abs=1e-12)
        assert smeasure(pred_float, g) == pytest.approx(smeasure(pred8, gt), abs=1e-12)
        np.testing.assert_allclose(emeasure_curve(pred_float, g), emeasure_curve(pred8, gt), atol=1e-12)
    # Min-max normalisation: an affine rescaling of a non-constant map changes nothing.
    assert smeasure(0.2 + 0.5 * pred, gt) == pytest.approx(smeasure(pred, gt), abs=1e-12)


def test_curve_index_is_the_threshold():
    _, pred, gt = RANDOM_CASES[0]
    precision, recall, _ = fmeasure_curve(pred, gt)
    # Threshold 0 keeps every pixel: full recall, precision = foreground fraction.
    assert recall[0] == 1.0
    assert precision[0] == pytest.approx(gt.mean())
    assert np.all(np.diff(recall) <= 0)


def test_centroid_on_last_column_stays_finite():
    """pysodmetrics returns NaN here (empty quadrants); we drop zero-weight quadrants."""
    gt = np.zeros((20, 30), dtype=bool)
    gt[5:15, -1] = True
    # The centroid (row 9.5 -> 10, column 29) puts the split after the last column: the right quadrants
    # are empty. A constant 0.5 map: O_FG = O_BG = 2 * 0.5 / (0.5^2 + 1 + 0) = 0.8, so S_o = 0.8; both
    # remaining quadrants hold part of the object column, where gt varies and the map does not:
    # SSIM 0, S_r = 0. S = 0.5 * 0.8 + 0.5 * 0 = 0.4.
    assert smeasure(np.full(gt.shape, 0.5), gt) == pytest.approx(0.4)
    assert smeasure(gt.astype(np.float64), gt) == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
def _meter_update(pred, gt):
    SaliencyMeter().update(pred, gt)


PER_IMAGE: List[Callable] = [
    mae,
    fmeasure_curve,
    adaptive_fmeasure,
    smeasure,
    emeasure_curve,
    adaptive_emeasure,
    _meter_update,
]
FN_IDS = [fn.__name__ for fn in PER_IMAGE]


@pytest.mark.parametrize("fn", PER_IMAGE, ids=FN_IDS)
def test_shape_mismatch_is_reported(fn):
    with pytest.raises(ValueError, match=r"pred and gt must have the same .*pred \(40, 50\) and gt \(50, 40\)"):
        fn(np.zeros((40, 50)), np.zeros((50, 40), dtype=bool))


@pytest.mark.parametrize("fn", PER_IMAGE, ids=FN_IDS)
def test_non_2d_input_is_reported(fn):
    with pytest.raises(ValueError, match=r"pred must be a non-empty 2-D \(H, W\) array, got shape \(3, 40, 50\)"):
        fn(np.zeros((3, 40, 50)), np.zeros((40, 50), dtype=bool))
    with pytest.raises(ValueError, match=r"gt must be a non-empty 2-D \(H, W\) array, got shape \(2000,\)"):
        fn(np.zeros((40, 50)), np.zeros(2000, dtype=bool))
    with pytest.raises(ValueError, match=r"pred must be a non-empty 2-D .* got shape \(0, 5\)"):
        fn(np.zeros((0, 5)), np.zeros((0, 5), dtype=bool))


@pytest.mark.parametrize("fn", PER_IMAGE, ids=FN_IDS)
@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_float_pred_out_of_range_is_reported(fn, bad):
    pred = np.full((4, 6), 0.5)
    pred[1, 2] = bad
    with pytest.raises(ValueError, match=r"pred is a floating-point array of shape \(4, 6\).*\[0, 1\]"):
        fn(pred, np.zeros((4, 6), dtype=bool))


def test_integer_pred_out_of_range_is_reported():
    pred = np.zeros((4, 6), dtype=np.int16)
    pred[0, 0] = 300
    with pytest.raises(ValueError, match=r"pred is an integer array of shape \(4, 6\).*\[0, 255\].*300"):
        mae(pred, np.zeros((4, 6), dtype=bool))


def test_gt_out_of_range_is_reported():
    gt = np.zeros((4, 6))
    gt[0, 0] = -1
    with pytest.raises(ValueError, match=r"gt of shape \(4, 6\).*\[0, 255\]"):
        mae(np.zeros((4, 6)), gt)


def test_empty_meter_compute_is_reported():
    with pytest.raises(ValueError, match=r"SaliencyMeter\.compute\(\) got no images.*update\(pred, gt\)"):
        SaliencyMeter().compute()
