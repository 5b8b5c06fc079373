"""The synthetic benchmark: determinism, annotations consistent with masks, knobs, dataset."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from s2d_core.data.config import SyntheticConfig
from s2d_core.data.dataset import SyntheticSegmentation, collate, generate_split
from s2d_core.data.synthetic import make_world, render_scene
from s2d_core.presets import PRESETS, get_preset

CFG = SyntheticConfig(n_train=24, n_val=8, name="test")
SCENES = [render_scene(CFG, "train", i) for i in range(24)]


def test_same_seed_same_scene_and_independent_of_order():
    a = render_scene(CFG, "train", 5)
    b = render_scene(CFG, "train", 5)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_different_index_split_or_world_differ():
    a = render_scene(CFG, "train", 0)["image"]
    assert not np.array_equal(a, render_scene(CFG, "train", 1)["image"])
    assert not np.array_equal(a, render_scene(CFG, "val", 0)["image"])
    assert not np.array_equal(a, render_scene(CFG.replace(world_seed=1), "train", 0)["image"])


def test_shapes_dtypes_ranges():
    for s in SCENES:
        h = CFG.image_size
        assert s["image"].shape == (h, h, 3) and s["image"].dtype == np.float32
        assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
        k = len(s["classes"])
        assert CFG.min_objects <= k <= CFG.max_objects
        assert s["points"].shape == (k, 3) and s["boxes"].shape == (k, 5)
        assert set(np.unique(s["mask"])) <= set(range(CFG.n_classes + 1))
        assert s["classes"].min() >= 1 and s["classes"].max() <= CFG.n_classes


def test_mask_instances_and_tags_agree():
    for s in SCENES:
        for k, c in enumerate(s["classes"], start=1):
            region = s["instances"] == k
            assert region.sum() > 0
            assert (s["mask"][region] == c).all()
        assert ((s["instances"] > 0) == (s["mask"] > 0)).all()
        present = set(np.unique(s["mask"])) - {0}
        assert set(np.nonzero(s["tags"])[0] + 1) == present


def test_points_inside_their_object():
    for s in SCENES:
        for k, (y, x, c) in enumerate(s["points"], start=1):
            assert s["instances"][y, x] == k and s["mask"][y, x] == c


def test_scribbles_inside_objects_and_background():
    n_fg = n_bg = 0
    for s in SCENES:
        sc = s["scribbles"]
        labelled = sc != 255
        # every scribbled pixel carries the true label of its pixel
        assert (sc[labelled] == s["mask"][labelled]).all()
        for c in s["classes"]:
            assert (sc == c).any(), "every object gets a stroke"
        # strokes keep off the boundary: no object stroke pixel touches another label
        eroded_ok = ndimage.binary_erosion(s["instances"] > 0, iterations=1) | ~(sc > 0) | (sc == 255)
        assert eroded_ok.all()
        n_fg += int(((sc > 0) & labelled).sum())
        n_bg += int((sc == 0).sum())
    assert n_fg > 0 and n_bg > 0


def test_boxes_are_tight():
    for s in SCENES:
        for k, (x0, y0, x1, y1, c) in enumerate(s["boxes"], start=1):
            ys, xs = np.nonzero(s["instances"] == k)
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
            assert c == s["classes"][k - 1]


def test_emblems_lie_on_their_objects():
    for s in SCENES:
        e = s["emblem"]
        assert (s["mask"][e > 0] == e[e > 0]).all()


def test_world_shares_body_styles_between_classes():
    world = make_world(get_preset("cpu"))
    users = {}
    for c, spec in enumerate(world.classes):
        styles = [st.style for st in spec.subtypes]
        assert len(set(styles)) == len(styles), "sub-types of one class differ"
        for st in styles:
            users.setdefault(st, set()).add(c)
    # partial discriminativeness: no body style identifies a class on its own
    assert all(len(u) >= 2 for u in users.values())


def test_emblem_knob_changes_emblem_area():
    def frac(cfg):
        scenes = [render_scene(cfg, "train", i) for i in range(16)]
        return np.mean([(s["emblem"] > 0).sum() / (s["mask"] > 0).sum() for s in scenes])
    assert frac(CFG.replace(emblem_frac=0.3)) > 1.5 * frac(CFG.replace(emblem_frac=0.08))


def test_context_knob():
    none = [render_scene(CFG.replace(context_prob=0.0, context_distractor_prob=0.0), "train", i) for i in range(8)]
    assert all((s["context"] == 0).all() for s in none)
    always = [render_scene(CFG.replace(context_prob=1.0), "train", i) for i in range(8)]
    for s in always:
        for c in s["classes"]:
            assert (s["context"] == c).any()


def test_void_band():
    s = render_scene(CFG.replace(void_width=2), "train", 3)
    assert (s["mask"] == 255).any()
    t = render_scene(CFG, "train", 3)
    keep = s["mask"] != 255
    np.testing.assert_array_equal(s["mask"][keep], t["mask"][keep])


@pytest.mark.parametrize("bad", [dict(image_size=16), dict(n_classes=0), dict(emblem_frac=2.0),
                                 dict(max_objects=0), dict(object_radius=(0.3, 0.1)),
                                 dict(n_body_styles=2)])
def test_invalid_config_names_the_knob(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        SyntheticConfig(**bad)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="emblem_size"):
        SyntheticConfig.from_dict({"emblem_size": 0.1})
    assert SyntheticConfig.from_dict({"object_radius": [0.1, 0.2]}).object_radius == (0.1, 0.2)


def test_presets_and_unknown_preset():
    assert {"cpu", "gpu"} <= set(PRESETS)
    assert get_preset("gpu").image_size >= 256
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_dataset_items_and_collate(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path))
    ds = SyntheticSegmentation(CFG, "val", progress=False)
    assert len(ds) == 8 and ds.num_classes == CFG.n_classes + 1
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["mask"].dtype == torch.int64
    np.testing.assert_array_equal(item["mask"].numpy(), render_scene(CFG, "val", 0)["mask"])
    items = [ds[i] for i in range(4)]
    batch = collate(items)
    assert batch["image"].shape == (4, 3, 64, 64) and torch.equal(batch["image"][2], items[2]["image"])
    assert torch.equal(batch["mask"][3], items[3]["mask"])
    # points and boxes differ in length between images: kept as one (K_i, ...) entry per image
    assert [len(p) for p in batch["points"]] == [len(it["points"]) for it in items]
    assert all(torch.equal(p, it["points"]) and torch.equal(b, it["boxes"])
               for p, b, it in zip(batch["points"], batch["boxes"], items))
    with pytest.raises(IndexError, match="out of range"):
        ds[8]


def test_split_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path))
    first = generate_split(CFG, "val", progress=False)
    files = list((tmp_path / "synthetic").glob("*.npz"))
    assert len(files) == 1
    second = generate_split(CFG, "val", progress=False)  # loaded from disk
    for k in first:
        if isinstance(first[k], list):
            for a, b in zip(first[k], second[k]):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(first[k], second[k])


def test_parallel_generation_equals_serial():
    serial = generate_split(CFG, "val", use_cache=False, progress=False, workers=1)
    parallel = generate_split(CFG, "val", use_cache=False, progress=False, workers=2)
    np.testing.assert_array_equal(serial["image"], parallel["image"])
    for a, b in zip(serial["boxes"], parallel["boxes"]):
        np.testing.assert_array_equal(a, b)
