"""Dense label maps from every kind of label, and superpixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2d_core.data import get_dataset
from s2d_core.data.labels import UNLABELLED, box_labels, full_labels, point_labels, scribble_labels, superpixels


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    import os
    os.environ["S2D_CACHE_DIR"] = str(tmp_path_factory.mktemp("labels-cache"))
    ds = get_dataset("synthetic", "train", "tiny", progress=False)
    return [ds[i] for i in range(6)]


def test_points_label_each_object_and_add_background_clicks_on_background(items):
    for it in items:
        lab = point_labels(it, background_points=2, radius=1, seed=0)
        mask = it["mask"].numpy()
        for y, x, c in it["points"].numpy():
            assert lab[y, x] == c
        bg = lab == 0
        assert bg.any() and (mask[bg] == 0).all()          # background clicks land on background
        assert (lab == UNLABELLED).mean() > 0.9             # sparse
        np.testing.assert_array_equal(lab, point_labels(it, background_points=2, radius=1, seed=0))


def test_scribbles_boxes_full(items):
    it = items[0]
    s = scribble_labels(it)
    mask = it["mask"].numpy()
    labelled = s != UNLABELLED
    assert labelled.any() and (s[labelled & (s > 0)] == mask[labelled & (s > 0)]).all()
    b = box_labels(it)
    for x0, y0, x1, y1, c in it["boxes"].numpy():
        assert (b[y0:y1 + 1, x0:x1 + 1] > 0).any()
    inside = np.zeros_like(mask, bool)
    for x0, y0, x1, y1, c in it["boxes"].numpy():
        inside[y0:y1 + 1, x0:x1 + 1] = True
    assert (b[~inside] == 0).all() and ((mask > 0) & (mask != 255) <= inside).all()
    f = full_labels(it)
    assert ((f == mask) | (mask == 255)).all()


def test_superpixels_are_regions_of_the_image(items):
    img = items[0]["image"].numpy().transpose(1, 2, 0)
    sp = superpixels(img, n_segments=30)
    assert sp.shape == img.shape[:2] and sp.min() == 0 and 10 <= sp.max() + 1 <= 60
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        superpixels(img[..., 0])


def test_annotation_cost_counts_units_and_prices_them_like_bearman():
    from s2d_core.data.labels import BEARMAN_SECONDS, annotation_cost

    mask = np.zeros((16, 16), np.int64)
    mask[2:6, 2:6], mask[9:14, 9:14] = 1, 2
    scrib = np.full((16, 16), 255, np.int64)
    scrib[3, 2:5], scrib[11, 9:13] = 1, 2          # a stroke per object ...
    scrib[0, :8], scrib[15, 4:12] = 0, 0           # ... and two background strokes
    item = {"mask": torch.from_numpy(mask), "tags": torch.tensor([1.0, 1.0, 0.0]), "index": 0,
            "points": torch.tensor([[3, 3, 1], [11, 11, 2]]), "scribbles": torch.from_numpy(scrib),
            "boxes": torch.tensor([[2, 2, 5, 5, 1], [9, 9, 13, 13, 2]])}
    cost = {k: annotation_cost(item, k, num_classes=3) for k in ("tags", "points", "scribbles", "boxes", "full")}
    assert cost["tags"] == {"units": 0, "labelled_share": 0.0, "seconds": 3.0}
    assert cost["points"]["units"] == 3 and cost["points"]["seconds"] == 1.0 + 3 * BEARMAN_SECONDS["points"]
    assert cost["scribbles"]["units"] == 4
    assert cost["scribbles"]["labelled_share"] == (3 + 4 + 8 + 8) / 256
    assert cost["boxes"]["seconds"] == 1.0 + 2 * 26.0 and cost["full"]["labelled_share"] == 1.0
    assert [cost[k]["seconds"] for k in ("tags", "points", "scribbles", "boxes", "full")] == \
        sorted(cost[k]["seconds"] for k in ("tags", "points", "scribbles", "boxes", "full"))
    with pytest.raises(ValueError, match="label kind"):
        annotation_cost(item, "polygons", 3)
