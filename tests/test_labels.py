"""Dense label maps from every kind of label, and superpixels."""

from __future__ import annotations

import numpy as np
import pytest

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
