"""Dataset statistics, figures, the artifact cache and the dataset switch."""

import json
import re

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


def test_class_statistics_by_hand():
    inst = np.zeros((2, 4, 4), np.uint8)
    inst[0, 0, :2], inst[0, 2, :] = 1, 2           # image 0: two objects of class 1 (2 px and 4 px)
    inst[1, 2:, :] = 1                             # image 1: one object of class 2 (8 px)
    mask = np.stack([np.where(inst[0] > 0, 1, 0), np.where(inst[1] > 0, 2, 0)]).astype(np.uint8)
    emblem = np.zeros_like(mask)
    emblem[0, 0, 0], emblem[1, 3, :2] = 1, 2       # 1 of class 1's 6 px, 2 of class 2's 8 px
    context = np.zeros_like(mask)
    context[1, 0, 0], context[1, 0, 1] = 2, 1      # only image 1 shows context: of class 2 (there) and 1 (absent)
    data = {"mask": mask, "instances": inst, "emblem": emblem, "context": context,
            "classes": [np.array([1, 1]), np.array([2])]}
    a, b = class_statistics(data, ["background", "a", "b"])
    assert (a.pop("class"), b.pop("class")) == ("a", "b")
    # areas in % of the 16 px image; pixel shares of the 14 foreground px; context: % of the images with /
    # without the class that show its context
    assert a == pytest.approx({"images": 1, "objects": 2, "object_area": 100 * 3 / 16, "pixel_share": 100 * 6 / 14,
                               "emblem_share": 100 / 6, "on_context": 0.0, "context_without_class": 100.0})
    assert b == pytest.approx({"images": 1, "objects": 1, "object_area": 100 * 8 / 16, "pixel_share": 100 * 8 / 14,
                               "emblem_share": 100 * 2 / 8, "on_context": 100.0, "context_without_class": 0.0})


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
    np.testing.assert_allclose(out[0, 1], 0.45 * 0.5 + 0.55 * np.array([128, 0, 0]) / 255)  # alpha 0.55 of class 1
    with pytest.raises(ValueError, match="shape"):
        overlay_mask(np.zeros((4, 4)), m)


@pytest.fixture(scope="module")
def item():
    return get_dataset("synthetic", "val", preset=CFG, use_cache=False, progress=False)[0]


def test_annotation_panel_draws_each_annotation(item):
    import matplotlib.pyplot as plt

    names = ["background"] + [f"c{i}" for i in range(1, 7)]
    fig = annotation_panel(item, names)
    image, mask = item["image"].permute(1, 2, 0).numpy(), item["mask"].numpy()
    green = np.array([0, 128, 0]) / 255                     # VOC colour of class 2, the item's one object
    assert item["tags"].tolist() == [0, 1, 0, 0, 0, 0] and set(np.unique(mask)) == {0, 2}
    ax = dict(zip([a.get_title() for a in fig.axes], fig.axes))
    assert list(ax) == ["image", "image tags", "points", "scribbles", "boxes", "dense mask"]
    assert [t.get_text() for t in ax["image tags"].texts] == ["c2"]
    (y, x, c), = item["points"].tolist()
    (dots,) = ax["points"].collections
    np.testing.assert_array_equal(dots.get_offsets(), [[x, y]])  # drawn at (x, y)
    np.testing.assert_allclose(dots.get_facecolor()[0, :3], green)
    (x0, y0, x1, y1, c), = item["boxes"].tolist()
    (box,) = ax["boxes"].patches
    assert (box.get_xy(), box.get_width(), box.get_height()) == ((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1)
    np.testing.assert_allclose(box.get_edgecolor()[:3], green)
    drawn, fg = ax["dense mask"].images[0].get_array(), mask == 2
    np.testing.assert_allclose(drawn[fg], 0.15 * image[fg] + 0.85 * green)  # alpha 0.85 on the object
    np.testing.assert_allclose(drawn[~fg], image[~fg])                       # background as in the image
    drawn, scr = ax["scribbles"].images[0].get_array(), item["scribbles"].numpy()
    np.testing.assert_allclose(drawn[scr == 2], np.broadcast_to(green, drawn[scr == 2].shape))
    np.testing.assert_allclose(drawn[scr == 0], 0.85)        # background strokes: light grey
    np.testing.assert_allclose(drawn[scr == 255], 0.6 * image[scr == 255])  # the dimmed image
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["background", "c2"]
    plt.close("all")


def test_knob_strip_renders_one_column_per_value():
    import matplotlib.pyplot as plt

    from s2d_core.data.synthetic import render_scene

    axes = np.array(knob_strip(CFG, "clutter", [0, 8], views=("image", "mask", "emblem")).axes).reshape(3, 2)
    assert [a.get_title() for a in axes.flat] == ["clutter = 0", "clutter = 8", "", "", "", ""]
    assert [a.get_ylabel() for a in axes.flat] == ["image", "", "mask", "", "emblem", ""]
    for j, v in enumerate([0, 8]):
        s = render_scene(CFG.replace(clutter=v), "train", 0)
        np.testing.assert_array_equal(axes[0, j].images[0].get_array(), s["image"])
        for i, view in ((1, "mask"), (2, "emblem")):
            np.testing.assert_allclose(axes[i, j].images[0].get_array(), overlay_mask(s["image"], s[view], 0.75))
    assert not np.array_equal(axes[0, 0].images[0].get_array(), axes[0, 1].images[0].get_array())
    plt.close("all")


def test_subtype_gallery_shows_the_first_objects_of_each_class_and_subtype(data):
    import matplotlib.pyplot as plt

    from s2d_core.data.synthetic import make_world

    axes = np.array(subtype_gallery(data, CFG, per_subtype=2).axes).reshape(CFG.n_classes, CFG.n_subtypes, 2)
    assert [a.get_ylabel() for a in axes[:, 0, 0]] == [c.name for c in make_world(CFG).classes]
    assert [a.get_title(loc="left") for a in axes[0].flat] == [f"sub-type {t // 2}" if t % 2 == 0 else ""
                                                                for t in range(2 * CFG.n_subtypes)]
    crops = {}  # (class, sub-type) -> crops of its objects in the order of the data
    for i, (cls, sub, boxes) in enumerate(zip(data["classes"], data["subtypes"], data["boxes"])):
        for c, t, b in zip(cls, sub, boxes):
            crops.setdefault((int(c), int(t)), []).append(object_crop(data["image"][i], b))
    for (c, t, k), ax in np.ndenumerate(axes):
        if k < len(crops.get((c + 1, t), [])):
            np.testing.assert_array_equal(ax.images[0].get_array(), crops[c + 1, t][k])
        else:
            assert not ax.images
    plt.close("all")


def test_stage_map_highlights_one_stage():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from s2d_core.viz import STAGES

    ax = stage_map(highlight="CAM")
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(STAGES) == 8
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 7  # one between each pair of stages
    assert [p.get_facecolor() for p in boxes] == [to_rgba("#f4a259") if s == "CAM" else to_rgba("#dfe7f2")
                                                  for s in STAGES]
    assert [t.get_text() for t in ax.texts][::2] == list(STAGES)  # each box: its name, then its note
    with pytest.raises(ValueError, match="unknown stage"):
        stage_map(highlight="nowhere")
    plt.close("all")


def test_object_crop_by_hand():
    image = np.arange(12 * 6 * 3).reshape(12, 6, 3)          # 12 rows, 6 columns
    # box x 1..5, y 3..7 (5 px square): half-side (1 + 2 * 0.5) * 5 / 2 = 5 around the centre (x 3, y 5),
    # so 11 samples at x = -2..8 (clipped to the columns 0..5) and y = 0..10
    crop = object_crop(image, np.array([1, 3, 5, 7, 1]), out=11, margin=0.5)
    np.testing.assert_array_equal(crop, image[np.arange(11)][:, [0, 0, 0, 1, 2, 3, 4, 5, 5, 5, 5]])
    assert object_crop(image, np.array([1, 3, 5, 7, 1]), out=16).shape == (16, 16, 3)


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
    a = cache.artifact_key("classifier", 1, {"x": 1, "y": [1, 2]})
    assert a == cache.artifact_key("classifier", 1, {"y": [1, 2], "x": 1})  # order-independent
    assert a != cache.artifact_key("classifier", 1, {"x": 2, "y": [1, 2]})
    assert a != cache.artifact_key("classifier", 2, {"x": 1, "y": [1, 2]})  # the recipe version is part of it
    assert a != cache.artifact_key("segmenter", 1, {"x": 1, "y": [1, 2]})   # so is the kind
    assert re.fullmatch("[0-9a-f]{16}", a)  # 16 lower-case hex digits
    with pytest.raises(ValueError, match="recipe version"):
        cache.artifact_key("classifier", 0, {})
    target = tmp_path / "out" / "r.json"
    cache.atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"

    with pytest.raises(TypeError):
        cache.atomic_write_bytes(target, 12345)  # not bytes: the old file must survive intact
    assert target.read_bytes() == b"{}"
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temp file left behind
