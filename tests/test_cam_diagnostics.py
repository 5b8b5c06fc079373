"""CAM diagnostics (where the mass goes, per-image mIoU) and the CAM figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from s2d_core.eval.cam_diagnostics import REGIONS, cam_mass, per_image_miou, seed_miou_per_image
from s2d_core.eval.segmentation import SegmentationMeter


def test_cam_mass_partitions_by_hand():
    mask = np.zeros((4, 4), np.int64)
    mask[:2, :2] = 1                      # object of class 1 (4 px)
    emblem = np.zeros_like(mask)
    emblem[0, 0] = 1                      # its emblem (1 px)
    context = np.zeros_like(mask)
    context[3, :] = 1                     # class-1 context on the background (4 px)
    cam = np.zeros((2, 4, 4))
    cam[0, 0, 0] = 3.0                    # emblem
    cam[0, 1, 1] = 1.0                    # rest of object
    cam[0, 3, 0] = 2.0                    # context
    cam[0, 2, 3] = 2.0                    # other
    cam[1] = 5.0                          # class 2 is not tagged: ignored
    share = cam_mass([cam], [np.array([1, 0])], [mask], [emblem], [context])
    assert list(share) == list(REGIONS)
    np.testing.assert_allclose([share[r] for r in REGIONS], [3 / 8, 1 / 8, 2 / 8, 2 / 8])
    with pytest.raises(ValueError, match="all CAMs are zero"):
        cam_mass([np.zeros((2, 4, 4))], [np.array([1, 0])], [mask], [emblem], [context])


def test_per_image_miou_matches_the_meter_on_one_image():
    rng = np.random.default_rng(0)
    pred, gt = rng.integers(0, 3, (16, 16)), rng.integers(0, 3, (16, 16))
    gt[0] = 255
    expected = SegmentationMeter(3).update(pred, gt).compute()["miou"]
    np.testing.assert_allclose(per_image_miou([pred], [gt])[0], expected)


def test_seed_miou_per_image_is_one_for_a_perfect_cam():
    mask = np.zeros((8, 8), np.int64)
    mask[2:6, 2:6] = 2
    cam = np.zeros((3, 8, 8))
    cam[1][mask == 2] = 1.0
    np.testing.assert_allclose(seed_miou_per_image([cam], [np.array([0, 1, 0])], [mask], 0.5), [1.0])


def test_cam_figures_draw():
    import matplotlib.pyplot as plt

    from s2d_core.data import get_dataset
    from s2d_core.models import Classifier
    from s2d_core.viz import cam_decomposition, plot_cam_mass, show_cams, show_label_maps

    ds = get_dataset("synthetic", "val", "tiny", progress=False)
    samples = [ds[i] for i in range(3)]
    cams = [np.random.default_rng(i).random((6, 64, 64)) for i in range(3)]
    fig = show_cams(samples, cams, ds.class_names)
    assert len(fig.axes) == 6
    fig = show_label_maps([s["image"] for s in samples], {"gt": [s["mask"] for s in samples]})
    assert len(fig.axes) == 6
    torch.manual_seed(0)
    fig = cam_decomposition(Classifier(6), samples[0], ds.class_names, k=2)
    assert len(fig.axes) == 4
    ax = plot_cam_mass({"a": dict(zip(REGIONS, [0.1, 0.4, 0.3, 0.2]))})
    assert ax.get_xlim() == (0, 100)
    plt.close("all")


def test_cam_region_means_by_hand():
    from s2d_core.eval.cam_diagnostics import REGION_MEANS, cam_region_means

    mask = np.zeros((4, 4), np.int64)
    mask[:2, :2] = 1
    mask[3, 3] = 2                        # an object of another class
    emblem = np.zeros_like(mask)
    emblem[0, 0] = 1
    context = np.zeros_like(mask)
    context[2, :] = 1                     # class-1 context: 4 background px
    cam = np.zeros((2, 4, 4))
    cam[0, 0, 0] = 0.9                    # emblem
    cam[0, 0, 1] = cam[0, 1, 0] = 0.6     # 2 of the 3 other object px
    cam[0, 2, :2] = 0.4                   # half the context
    cam[0, 3, 0] = 0.7                    # one of the 7 other background px
    cam[0, 3, 3] = 0.5                    # the other object
    got = cam_region_means([cam], [np.array([1, 0])], [mask], [emblem], [context])
    assert list(got) == list(REGION_MEANS)
    np.testing.assert_allclose([got[r] for r in REGION_MEANS], [0.9, 0.4, 0.2, 0.1, 0.5])
    # with a threshold: the share of each region above it
    got = cam_region_means([cam], [np.array([1, 0])], [mask], [emblem], [context], threshold=0.55)
    np.testing.assert_allclose([got[r] for r in REGION_MEANS], [1.0, 2 / 3, 0.0, 1 / 7, 0.0])


def test_prototype_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    from s2d_core.data import get_dataset
    from s2d_core.viz import compare_maps, plot_assignment, plot_plan, show_clusters, show_steps

    ds = get_dataset("synthetic", "val", "tiny", progress=False)
    items = [ds[i] for i in range(2)]
    maps = np.random.default_rng(0).random((2, ds.num_classes - 1, 64, 64))
    assert compare_maps(items, {"a": maps, "b": maps}, titles=["x", "y"]) is not None
    cells = np.arange(64).reshape(8, 8) % 3 - 1
    fn = np.zeros((8, 8)); fn[2, 2] = 1
    assert show_steps(items[0], {"map": maps[0, 0][::8, ::8], "seed labels": cells + 1,
                                 "FN / FP": {"fn": fn, "fp": fn.T}}) is not None
    show_clusters(items[0], cells)
    ax = plot_assignment(np.random.default_rng(1).random((10, 2)), np.array([0, 1, -1] + [0] * 7), np.zeros((2, 2)))
    assert "sizes [8, 1]" in ax.get_title()  # the -1 point is not counted
    plan = np.full((6, 2), 1 / 12)
    plot_plan(plan)
