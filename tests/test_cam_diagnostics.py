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


def test_per_image_miou_by_hand():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 2, 2]])
    # 7 valid pixels; classes in pred or gt: 0, 1, 2 (class 2 only predicted, on one valid pixel)
    # class 0: 3 / 4, class 1: 2 / 4, class 2: 0 / 1 -> mean 5 / 12; an all-void image has no classes: NaN
    np.testing.assert_allclose(per_image_miou([pred, pred], [gt, np.full_like(gt, 255)]), [5 / 12, np.nan])


def test_seed_miou_per_image_by_hand():
    mask = np.zeros((8, 8), np.int64)
    mask[2:6, 2:6] = 2                    # a 16 px object of class 2 on 48 px of background
    cam = np.zeros((3, 8, 8))
    cam[1][mask == 2] = 1.0
    half = cam.copy()
    half[1, 4:6] = 0.0                    # the CAM covers the top 8 px of the object only
    tags = np.array([0, 1, 0])
    # perfect: 1; half: class 2 IoU 8 / 16, background IoU 48 / 56 -> (1/2 + 6/7) / 2 = 19 / 28
    np.testing.assert_allclose(seed_miou_per_image([cam, half], [tags, tags], [mask, mask], 0.5), [1.0, 19 / 28])


# --------------------------------------------------------------------------- figures
def _outline_extent(contour):
    """(x0, x1, y0, y1) of the vertices of an outline drawn by ``draw_outline`` (a contour set)."""
    v = np.concatenate([p.vertices for p in contour.get_paths()])
    return tuple(float(a) for a in (v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()))


def _region_extent(region):
    """Where the 0.5 contour of a boolean region lies: half a pixel outside its outermost pixels
    (on the pixel centre where the region touches the image border)."""
    ys, xs = np.nonzero(region)
    h, w = region.shape
    return (max(xs.min() - 0.5, 0), min(xs.max() + 0.5, w - 1), max(ys.min() - 0.5, 0), min(ys.max() + 0.5, h - 1))


def _heat(image, cam):
    """What ``cam_heatmap`` should draw: half the image, half the jet colour of the map."""
    import matplotlib.pyplot as plt

    return 0.5 * image.permute(1, 2, 0).numpy() + 0.5 * plt.get_cmap("jet")(cam)[..., :3]


@pytest.fixture(scope="module")
def val_items():
    from s2d_core.data import get_dataset

    ds = get_dataset("synthetic", "val", "tiny", progress=False)
    return ds, [ds[i] for i in range(3)]


def test_show_cams_draws_the_first_tagged_class_with_its_outlines(val_items):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from s2d_core.viz import show_cams

    ds, samples = val_items
    cams = [np.random.default_rng(i).random((6, 64, 64)) for i in range(3)]
    axes = np.array(show_cams(samples, cams, ds.class_names).axes).reshape(2, 3)
    assert [axes[0, 0].get_ylabel(), axes[1, 0].get_ylabel()] == ["image", "CAM"]
    for j, s in enumerate(samples):
        k = int(np.nonzero(s["tags"].numpy())[0][0])       # channel k is class k + 1
        assert axes[0, j].get_title() == ds.class_names[k + 1]
        np.testing.assert_allclose(axes[0, j].images[0].get_array(), s["image"].permute(1, 2, 0).numpy())
        np.testing.assert_allclose(axes[1, j].images[0].get_array(), _heat(s["image"], cams[j][k]), atol=1e-6)
    # sample 0 (class 2): the object outlined on both rows; the CAM row adds emblem and context
    s, obj = samples[0], samples[0]["mask"].numpy() == 2
    (top,) = axes[0, 0].collections
    assert _outline_extent(top) == _region_extent(obj)
    outline, emblem, context = axes[1, 0].collections
    assert _outline_extent(outline) == _region_extent(obj)
    assert _outline_extent(emblem) == _region_extent(s["emblem"].numpy() == 2)
    assert _outline_extent(context) == _region_extent((s["context"].numpy() == 2) & ~obj)
    assert [tuple(c.get_edgecolor()[0]) for c in (outline, emblem, context)] == [to_rgba("white"), to_rgba("black"),
                                                                                 to_rgba("white")]
    assert context.get_linestyle()[0][1] is not None and outline.get_linestyle()[0][1] is None  # dashed, solid
    plt.close("all")


def test_show_label_maps_colours_each_row(val_items):
    import matplotlib.pyplot as plt

    from s2d_core.viz import show_label_maps

    _, samples = val_items
    gts = [s["mask"].numpy() for s in samples]
    seeds = [np.where(np.arange(64)[:, None] < 4, 255, g) for g in gts]  # top 4 rows undecided
    axes = np.array(show_label_maps([s["image"] for s in samples], {"gt": gts, "seeds": seeds}).axes).reshape(3, 3)
    assert [a.get_ylabel() for a in axes[:, 0]] == ["image", "gt", "seeds"]
    # VOC colours: 0 black, 2 (0, 128, 0), 4 (0, 0, 128); void white
    colour = {0: (0, 0, 0), 2: (0, 128 / 255, 0), 4: (0, 0, 128 / 255), 255: (1, 1, 1)}
    for j in range(3):
        np.testing.assert_allclose(axes[0, j].images[0].get_array(), samples[j]["image"].permute(1, 2, 0).numpy())
    assert set(np.unique(seeds[1])) == set(colour)  # sample 1 has classes 2 and 4
    for row, maps in ((1, gts), (2, seeds)):
        drawn, labels = axes[row, 1].images[0].get_array(), maps[1]
        for label in np.unique(labels):
            pixels = drawn[labels == label]
            np.testing.assert_allclose(pixels, np.broadcast_to(colour[label], pixels.shape))
    plt.close("all")


def test_cam_decomposition_shows_the_top_channels_and_their_weighted_sum(val_items):
    import matplotlib.pyplot as plt

    from s2d_core.models import Classifier
    from s2d_core.viz import cam_decomposition

    ds, samples = val_items
    torch.manual_seed(0)
    model = Classifier(6).eval()
    axes = cam_decomposition(model, samples[1], ds.class_names, k=2).axes
    assert len(axes) == 4 and axes[0].get_title() == "image (grazer)"  # sample 1: tags 2 and 4, first = grazer
    with torch.no_grad():
        f = model.features(samples[1]["image"][None])             # (1, D, h, w)
        cam = torch.relu(model.head(f))[0, 1]                      # the 1x1 conv head: W_c^T F over all channels
    f, w = f[0], model.head.weight[1].flatten().detach()
    contrib = (w * f.mean((1, 2))).numpy()
    shown = [int(a.get_title().split()[1]) for a in axes[1:3]]
    assert sorted(shown, key=lambda d: -contrib[d]) == shown and contrib[shown[-1]] >= np.delete(contrib, shown).max()
    for a, d in zip(axes[1:3], shown):
        assert a.get_title() == f"channel {d}\nW = {w[d]:+.2f}"
        np.testing.assert_allclose(a.images[0].get_array(), f[d].numpy())
    np.testing.assert_allclose(axes[3].images[0].get_array(), cam.numpy(), atol=1e-5)
    plt.close("all")


def test_plot_cam_mass_stacks_the_shares():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from s2d_core.viz import plot_cam_mass

    ax = plot_cam_mass({"a": dict(zip(REGIONS, [0.1, 0.4, 0.3, 0.2])), "b": dict(zip(REGIONS, [0.5, 0.05, 0.25, 0.2]))})
    bars = [(p.get_x(), p.get_width(), p.get_y() + p.get_height() / 2) for p in ax.patches]
    np.testing.assert_allclose(bars, [(0, 10, 0), (10, 40, 0), (50, 30, 0), (80, 20, 0),    # row 0: a, in %
                                      (0, 50, 1), (50, 5, 1), (55, 25, 1), (80, 20, 1)])   # row 1: b
    region_colour = ["#222222", "#4c9be8", "#e8a04c", "#bbbbbb"]
    assert [p.get_facecolor() for p in ax.patches] == [to_rgba(c) for c in region_colour * 2]
    assert [t.get_text() for t in ax.texts] == ["10%", "40%", "30%", "20%", "50%", "25%", "20%"]  # 5% is unlabelled
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["emblem", "rest of object", "class context", "other"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"] and ax.get_xlim() == (0, 100)
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


def test_compare_maps_draws_the_first_tagged_channel_of_each_method(val_items):
    import matplotlib.pyplot as plt

    from s2d_core.viz import compare_maps

    _, samples = val_items
    items = samples[:2]
    level = np.arange(1, 7)[:, None, None] / 10 * np.ones((6, 64, 64))  # channel c is the constant (c + 1) / 10
    axes = np.array(compare_maps(items, {"a": [level, level], "b": [1 - level, 1 - level]},
                                 titles=["x", "y"]).axes).reshape(3, 2)
    assert [a.get_title() for a in axes[0]] == ["x", "y"]
    assert [a.get_ylabel() for a in axes[:, 0]] == ["image", "a", "b"]
    for j, s in enumerate(items):
        k = int(np.nonzero(s["tags"].numpy())[0][0])  # both samples: class 2, channel 1
        np.testing.assert_allclose(axes[1, j].images[0].get_array(), _heat(s["image"], level[k]), atol=1e-6)
        np.testing.assert_allclose(axes[2, j].images[0].get_array(), _heat(s["image"], 1 - level[k]), atol=1e-6)
        assert [len(a.collections) for a in axes[:, j]] == [1, 3, 3]  # object; object, emblem, context
        assert _outline_extent(axes[2, j].collections[0]) == _region_extent(s["mask"].numpy() == k + 1)
    plt.close("all")


def test_show_steps_upsamples_each_panel_by_nearest_neighbour(val_items):
    import matplotlib.pyplot as plt

    from s2d_core.viz import show_steps

    _, (item, *_) = val_items
    image = item["image"].permute(1, 2, 0).numpy()
    score = np.random.default_rng(0).random((8, 8))
    cells = np.arange(64).reshape(8, 8) % 3                 # labels 0, 1, 2 on an 8 x 8 grid
    fn, fp = np.zeros((8, 8)), np.zeros((8, 8))
    fn[2, 2], fp[5, 1] = 1, 1
    axes = show_steps(item, {"map": score, "seed labels": cells, "FN / FP": {"fn": fn, "fp": fp}}).axes
    assert [a.get_title() for a in axes] == ["image", "map", "seed labels", "FN / FP"]
    up = lambda x: np.kron(x, np.ones((8, 8)))  # noqa: E731 - each cell is an 8 x 8 block of the 64 x 64 image
    np.testing.assert_allclose(axes[1].images[0].get_array(), _heat(item["image"], up(score)), atol=1e-6)
    voc = np.array([(0, 0, 0), (128, 0, 0), (0, 128, 0)]) / 255
    np.testing.assert_allclose(axes[2].images[0].get_array(), voc[up(cells).astype(int)])
    expected = image * 0.45
    expected[16:24, 16:24] = (0.1, 0.85, 0.2)               # FN cell (2, 2): green
    expected[40:48, 8:16] = (0.95, 0.15, 0.1)               # FP cell (5, 1): red
    np.testing.assert_allclose(axes[3].images[0].get_array(), expected, atol=1e-6)
    obj = _region_extent(item["mask"].numpy() == 2)         # the object (class 2) outlined on every panel
    assert all(len(a.collections) == 1 and _outline_extent(a.collections[0]) == obj for a in axes)
    plt.close("all")


def test_show_clusters_tints_each_cluster_and_dims_the_rest(val_items):
    import matplotlib.pyplot as plt

    from s2d_core.viz import show_clusters

    _, (item, *_) = val_items
    image = item["image"].permute(1, 2, 0).numpy()
    cells = np.full((8, 8), -1)
    cells[0, 0], cells[7, 7] = 0, 1
    drawn = show_clusters(item, cells, title="k = 2").images[0].get_array()
    tab10 = plt.get_cmap("tab10")
    np.testing.assert_allclose(drawn[:8, :8], 0.35 * image[:8, :8] + 0.65 * np.array(tab10(0)[:3]), atol=1e-6)
    np.testing.assert_allclose(drawn[56:, 56:], 0.35 * image[56:, 56:] + 0.65 * np.array(tab10(1)[:3]), atol=1e-6)
    np.testing.assert_allclose(drawn[8:56], 0.35 * image[8:56], atol=1e-6)  # not a seed cell: dimmed only
    plt.close("all")


def test_plot_assignment_counts_assigned_points_only():
    import matplotlib.pyplot as plt

    from s2d_core.viz import plot_assignment

    ax = plot_assignment(np.random.default_rng(1).random((10, 2)), np.array([0, 1, -1] + [0] * 7), np.zeros((2, 2)))
    assert "sizes [8, 1]" in ax.get_title()  # the -1 point is not counted
    grey, coloured, stars = ax.collections
    assert len(grey.get_offsets()) == 1 and len(coloured.get_offsets()) == 9 and len(stars.get_offsets()) == 2
    plt.close("all")


def test_plot_plan_sorts_rows_by_prototype_and_writes_the_column_sums():
    import matplotlib.pyplot as plt

    from s2d_core.viz import plot_plan

    plan = np.array([[0.05, 0.20], [0.20, 0.05], [0.10, 0.15], [0.25, 0.0]])
    ax = plot_plan(plan)
    # rows of prototype 0 (rows 1, 3), then of prototype 1 (rows 0, 2), each by decreasing weight:
    # order 3, 1, 0, 2; drawn times N = 4 so that a row holding all its 1/N mass in one column is 1
    np.testing.assert_allclose(ax.images[0].get_array(), [[1.0, 0.0], [0.8, 0.2], [0.2, 0.8], [0.4, 0.6]])
    assert ax.images[0].get_clim() == (0, 1)
    assert ax.get_xlabel() == "prototype\n0.60  0.40"
    plt.close("all")
