"""Segmentation and CAM-seed metrics, cross-checked against torchmetrics."""

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from s2d_core.eval.seeds import seeds_from_cam, sweep_thresholds
from s2d_core.eval.segmentation import SegmentationMeter, confusion_matrix, iou_from_confusion

RNG = np.random.default_rng(0)


def random_batch(n=5, c=6, h=17, w=23, void=0.1):
    target = RNG.integers(0, c, size=(n, h, w))
    target[RNG.random((n, h, w)) < void] = 255
    pred = np.where(RNG.random((n, h, w)) < 0.6, target, RNG.integers(0, c, size=(n, h, w)))
    pred[pred == 255] = 0
    return pred, target


def test_miou_matches_torchmetrics_accumulated_over_batches():
    c = 6
    meter = SegmentationMeter(c)
    ref = MulticlassJaccardIndex(num_classes=c, ignore_index=255, average="none")
    for _ in range(4):
        pred, target = random_batch(c=c)
        meter.update(pred, target)
        ref.update(torch.from_numpy(pred), torch.from_numpy(target))
    ours = meter.compute()
    np.testing.assert_allclose(ours["iou"], ref.compute().numpy(), atol=1e-6)
    assert ours["miou"] == pytest.approx(float(ref.compute().mean()), abs=1e-6)


def test_absent_class_is_nan_not_zero():
    # class 3 appears in neither prediction nor ground truth: excluded from the mean
    target = np.array([[0, 1, 2, 255]])
    pred = np.array([[0, 1, 1, 2]])
    res = SegmentationMeter(4).update(pred, target).compute()
    assert np.isnan(res["iou"][3])
    np.testing.assert_allclose(res["iou"][:3], [1.0, 0.5, 0.0])
    assert res["miou"] == pytest.approx(0.5)
    ref = MulticlassJaccardIndex(num_classes=4, ignore_index=255, average="none")
    ref.update(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(ref.compute().numpy()[:3], res["iou"][:3])


def test_void_pixels_ignored_even_when_predicted_wrong():
    target = np.full((4, 4), 255)
    target[0, 0] = 1
    pred = np.zeros((4, 4), int)
    pred[0, 0] = 1
    # the 15 void pixels are predicted 0 against "true" 255: none of them may land anywhere
    np.testing.assert_array_equal(confusion_matrix(pred, target, 2), [[0, 0], [0, 1]])


def test_meter_errors():
    m = SegmentationMeter(3)
    with pytest.raises(ValueError, match="before any"):
        m.compute()
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*\(2, 3\)"):
        m.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"label\(s\) \[5\]"):
        m.update(np.zeros((2, 2), int), np.full((2, 2), 5))
    with pytest.raises(TypeError, match="integer labels"):
        m.update(np.zeros((2, 2), float), np.zeros((2, 2), int))


def test_iou_from_confusion_hand_computed():
    conf = np.array([[3, 1], [2, 4]])
    np.testing.assert_allclose(iou_from_confusion(conf), [3 / 6, 4 / 7])


def test_seed_labels_respect_tags_and_threshold():
    cam = np.zeros((3, 2, 2))
    cam[0] = [[0.9, 0.2], [0.1, 0.0]]
    cam[2] = [[0.95, 0.6], [0.3, 0.0]]  # class 3 is not tagged: must never appear
    tags = np.array([1, 1, 0])
    cam[1] = [[0.1, 0.7], [0.25, 0.0]]
    lab = seeds_from_cam(cam, tags, threshold=0.25)
    np.testing.assert_array_equal(lab, [[1, 2], [0, 0]])  # 0.25 is a tie: background wins


def brute_force_sweep(cams, tags, masks, c, thresholds):
    out = []
    for t in thresholds:
        m = SegmentationMeter(c)
        for cam, tag, mask in zip(cams, tags, masks):
            full = np.concatenate([np.full((1,) + cam.shape[1:], t), np.where(tag[:, None, None] > 0, cam, -1)])
            m.update(full.argmax(0), mask)
        out.append(m.compute()["miou"])
    return np.array(out)


def test_sweep_matches_argmax_over_background_and_cams():
    c, thresholds = 4, [0.1, 0.3, 0.5, 0.7]
    cams = [RNG.random((c - 1, 9, 11)) for _ in range(6)]
    tags = [(RNG.random(c - 1) < 0.6).astype(float) for _ in range(6)]
    for t in tags:
        t[0] = 1
    masks = [RNG.integers(0, c, (9, 11)) for _ in range(6)]
    res = sweep_thresholds(cams, tags, masks, num_classes=c, thresholds=thresholds)
    np.testing.assert_allclose(res["miou"], brute_force_sweep(cams, tags, masks, c, thresholds))
    assert res["best_miou"] == pytest.approx(res["miou"].max())
    assert res["best_threshold"] == thresholds[int(res["miou"].argmax())]


def test_sweep_errors():
    with pytest.raises(ValueError, match="channels"):
        sweep_thresholds([np.zeros((2, 3, 3))], [np.ones(2)], [np.zeros((3, 3), int)], num_classes=4)
    with pytest.raises(ValueError, match="no images"):
        sweep_thresholds([], [], [], num_classes=3)
    with pytest.raises(ValueError, match="tags must have shape"):
        seeds_from_cam(np.zeros((2, 3, 3)), np.ones(3), 0.5)


def test_pred_ignore_leaves_undecided_pixels_out():
    from s2d_core.eval.segmentation import SegmentationMeter

    pred = np.array([[1, 1, 255, 0], [0, 255, 2, 2]])
    gt = np.array([[1, 1, 1, 0], [0, 0, 2, 1]])
    m = SegmentationMeter(3).update(pred, gt, pred_ignore=255)
    # only the 6 decided pixels count: pred 1,1,0 / 0,2,2 against gt 1,1,0 / 0,2,1; rows gt, columns pred:
    # gt 0 -> pred 0 twice; gt 1 -> pred 1 twice, pred 2 once; gt 2 -> pred 2 once
    np.testing.assert_array_equal(m.conf, [[2, 0, 0], [0, 2, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="pred shape"):
        SegmentationMeter(3).update(pred[:, :2], gt[:1], pred_ignore=255)
