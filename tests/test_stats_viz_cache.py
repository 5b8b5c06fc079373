"""Dataset statistics, figures, the artifact cache and the dataset switch."""

import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from s2d_core import cache  # noqa: E402
from s2d_core.data import SyntheticConfig, get_dataset  # noqa: E402
from s2d_core.data.dataset import generate_split  # noqa: E402
from s2d_core.data.stats import annotation_density, class_statistics, cooccurrence, markdown_table  # noqa: E402
from s2d_core.viz import annotation_panel, colourise_mask, label_palette, overlay_mask, stage_map  # noqa: E402
from s2d_core.viz.world import knob_strip, object_crop, subtype_gallery  # noqa: E402

CFG = SyntheticConfig(n_train=40, n_val=4, name="t")


@pytest.fixture(scope="module")
def data():
    return generate_split(CFG, "train", use_cache=False, progress=False)


def test_class_statistics_agree_with_raw_counts(data):
    names = ["background"] + [f"c{i}" for i in range(1, 7)]
    rows = class_statistics(data, names)
    assert len(rows) == 6
    for c, r in enumerate(rows, start=1):
        assert r["images"] == sum(c in cl for cl in data["classes"])
        assert r["objects"] == sum(int((cl == c).sum()) for cl in data["classes"])
    assert sum(r["pixel_share"] for r in rows) == pytest.approx(100.0)
    co = cooccurrence(data, 6)
    assert (co == co.T).all()
    assert [co[i, i] for i in range(6)] == [r["images"] for r in rows]


def test_annotation_density_on_a_hand_made_example():
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, :2, :2] = 1
    scr = np.full((1, 4, 4), 255, np.uint8)
    scr[0, 0, 0] = 1
    scr[0, 3, 3] = 0
    d = annotation_density({"mask": mask, "scribbles": scr, "points": [np.zeros((1, 3))],
                            "boxes": [np.array([[0, 0, 2, 1, 1]])]})
    assert d["foreground (dense mask)"] == pytest.approx(25.0)
    assert d["points"] == pytest.approx(100 / 16)
    assert d["scribbles, object strokes"] == pytest.approx(100 / 16)
    assert d["inside boxes"] == pytest.approx(100 * 6 / 16)
    assert d["background inside boxes (% of box area)"] == pytest.approx(100 * 2 / 6)


def test_markdown_table():
    t = markdown_table([{"a": 1, "b": 0.123}, {"a": 2, "b": 1.0}], ".2f")
    assert t.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.12 |", "| 2 | 1.00 |"]
    with pytest.raises(ValueError):
        markdown_table([])


def test_palette_and_overlays():
    pal = label_palette()
    np.testing.assert_allclose(pal[:3] * 255, [[0, 0, 0], [128, 0, 0], [0, 128, 0]])
    m = np.array([[0, 1], [255, 2]])
    rgb = colourise_mask(m)
    np.testing.assert_allclose(rgb[1, 0], [1, 1, 1])  # void is white
    img = np.full((2, 2, 3), 0.5)
    out = overlay_mask(img, m)
    np.testing.assert_allclose(out[0, 0], img[0, 0])  # background untouched
    np.testing.assert_allclose(out[1, 0], img[1, 0])  # void untouched
    assert not np.allclose(out[0, 1], img[0, 1])
    with pytest.raises(ValueError, match="shape"):
        overlay_mask(np.zeros((4, 4)), m)


def test_figures_build(data):
    import matplotlib.pyplot as plt
    ds = get_dataset("synthetic", "val", preset=CFG, use_cache=False, progress=False)
    figs = [annotation_panel(ds[0], ds.class_names), knob_strip(CFG, "clutter", [0, 8], views=("image", "mask")),
            subtype_gallery(data, CFG, per_subtype=1), stage_map(highlight="CAM").figure]
    assert all(len(f.axes) > 0 for f in figs)
    assert object_crop(data["image"][0], data["boxes"][0][0], out=16).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="unknown stage"):
        stage_map(highlight="nowhere")
    plt.close("all")


def test_get_dataset_switch(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        get_dataset("coco")
    with pytest.raises(ValueError, match="needs root"):
        get_dataset("voc", "val")
    with pytest.raises(ValueError, match="only used with name='voc'"):
        get_dataset("synthetic", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        get_dataset("voc", "val", root=str(tmp_path / "missing"))


def test_cache_key_and_atomic_write(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c" and cache.cache_dir().is_dir()
    a = cache.config_key({"x": 1, "y": [1, 2]})
    assert a == cache.config_key({"y": [1, 2], "x": 1})          # order-independent
    assert a != cache.config_key({"x": 2, "y": [1, 2]})
    assert a != cache.config_key({"x": 1, "y": [1, 2]}, modules=(json,))  # code is part of the key
    target = tmp_path / "out" / "r.json"
    cache.atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"

    with pytest.raises(TypeError):
        cache.atomic_write_bytes(target, 12345)  # not bytes: the old file must survive intact
    assert target.read_bytes() == b"{}"
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temp file left behind
