"""Tests for :mod:`s2d_core.data.voc` on a tiny VOC tree built in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image

from s2d_core.data.voc import (
    VOC_CLASSES,
    VOID,
    DatasetNotFoundError,
    VOCSegmentation,
    voc_colour_map,
)
from voc_fixture import SPECS, TRAIN, TRAIN_AUG, VAL, Tree, _build

@pytest.fixture
def voc_tree(tmp_path: Path) -> Tree:
    return _build(tmp_path)


# ----------------------------------------------------------------- loading
@pytest.mark.parametrize("split,ids", [("train_aug", TRAIN_AUG), ("train", TRAIN), ("val", VAL)])
def test_each_split_loads(voc_tree: Tree, split: str, ids: List[str]) -> None:
    ds = VOCSegmentation(voc_tree.voc, split=split)
    assert ds.ids == ids
    assert len(ds) == len(ids)
    assert ds.num_classes == 21 and ds.class_names == VOC_CLASSES
    for i, name in enumerate(ids):
        s = ds[i]
        assert s["name"] == name
        np.testing.assert_array_equal(s["mask"].numpy(), voc_tree.masks[name])


def test_classes_constant() -> None:
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[0] == "background"
    assert VOC_CLASSES[1] == "aeroplane" and VOC_CLASSES[15] == "person"
    assert VOC_CLASSES[20] == "tvmonitor" and VOID == 255


def test_shapes_dtypes_ranges(voc_tree: Tree) -> None:
    ds = VOCSegmentation(voc_tree.voc, split="train_aug")
    for s in (ds[i] for i in range(len(ds))):
        h, w, _ = SPECS[s["name"]]
        assert s["image"].shape == (3, h, w) and s["image"].dtype == torch.float32
        with Image.open(voc_tree.voc / "JPEGImages" / f"{s['name']}.jpg") as im:
            rgb = np.asarray(im.convert("RGB"))                  # (H, W, 3) uint8 as decoded
        np.testing.assert_allclose(s["image"].numpy(), rgb.transpose(2, 0, 1) / 255.0, atol=1e-7)
        assert s["image"].is_contiguous()
        assert s["mask"].shape == (h, w) and s["mask"].dtype == torch.int64
        vals = set(s["mask"].unique().tolist())
        assert vals <= set(range(21)) | {VOID}
        assert s["tags"].shape == (20,) and s["tags"].dtype == torch.float32
        assert set(s["tags"].unique().tolist()) <= {0.0, 1.0}


def test_tags_match_mask(voc_tree: Tree) -> None:
    ds = VOCSegmentation(voc_tree.voc, split="train_aug")
    for s in (ds[i] for i in range(len(ds))):
        expected = set(SPECS[s["name"]][2])
        got = {k + 1 for k in torch.nonzero(s["tags"]).flatten().tolist()}
        assert got == expected
        from_mask = set(s["mask"].unique().tolist()) - {0, VOID}
        assert got == from_mask


def test_void_preserved(voc_tree: Tree) -> None:
    s = VOCSegmentation(voc_tree.voc, split="val")[0]
    m = s["mask"]
    assert (m[0] == VOID).all() and (m[-1] == VOID).all()
    assert (m[:, 0] == VOID).all() and (m[:, -1] == VOID).all()
    assert (m[1:-1, 1:-1] != VOID).all()


def test_palette_masks_read_as_indices(tmp_path: Path) -> None:
    """Without SegmentationClassAug, train/val fall back to the palette PNGs."""
    tree = _build(tmp_path, with_aug=False)
    # Sanity: the palette colours differ from the indices, so an RGB/L reader fails.
    with Image.open(tree.voc / "SegmentationClass" / f"{TRAIN[0]}.png") as im:
        assert im.mode == "P"
        assert not np.array_equal(np.array(im.convert("L")), tree.masks[TRAIN[0]])
    for split, ids in (("train", TRAIN), ("val", VAL)):
        ds = VOCSegmentation(tree.voc, split=split)
        assert ds.mask_dir.name == "SegmentationClass"
        for i, name in enumerate(ids):
            np.testing.assert_array_equal(ds[i]["mask"].numpy(), tree.masks[name])


def test_aug_preferred_for_train_val(voc_tree: Tree) -> None:
    assert VOCSegmentation(voc_tree.voc, split="val").mask_dir.name == "SegmentationClassAug"


def test_mask_dir_override(voc_tree: Tree) -> None:
    ds = VOCSegmentation(voc_tree.voc, split="train", mask_dir="SegmentationClass")
    assert ds.mask_dir == voc_tree.voc / "SegmentationClass"
    with pytest.raises(DatasetNotFoundError, match="pseudo"):
        VOCSegmentation(voc_tree.voc, split="train", mask_dir="pseudo")


def test_transform_called_on_dict(voc_tree: Tree) -> None:
    seen = []

    def flip(sample):
        seen.append(sorted(sample))
        sample["image"] = sample["image"].flip(-1)
        sample["mask"] = sample["mask"].flip(-1)
        return sample

    plain = VOCSegmentation(voc_tree.voc, split="train")[0]
    s = VOCSegmentation(voc_tree.voc, split="train", transform=flip)[0]
    assert seen == [["image", "mask", "name", "tags"]]
    assert torch.equal(s["mask"], plain["mask"].flip(-1))
    assert torch.equal(s["tags"], plain["tags"])


# ------------------------------------------------------------ root & lists
def test_parent_root_resolves(voc_tree: Tree) -> None:
    a = VOCSegmentation(voc_tree.base, split="val")
    b = VOCSegmentation(str(voc_tree.voc), split="val")
    assert a.root == b.root == voc_tree.voc
    assert a.ids == b.ids


@pytest.mark.parametrize("where", ["SegmentationAug", "root"])
def test_train_aug_list_fallbacks(voc_tree: Tree, where: str) -> None:
    src = voc_tree.voc / "ImageSets" / "Segmentation" / "train_aug.txt"
    if where == "root":
        dst = voc_tree.voc / "train_aug.txt"
    else:
        dst = voc_tree.voc / "ImageSets" / "SegmentationAug" / "train_aug.txt"
        dst.parent.mkdir()
    dst.write_text("\n".join(TRAIN_AUG))  # plain-id format here
    src.unlink()
    assert VOCSegmentation(voc_tree.voc).ids == TRAIN_AUG


def test_missing_root_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as exc:
        VOCSegmentation(missing)
    msg = str(exc.value)
    assert str(missing) in msg
    for needle in ("JPEGImages", "SegmentationClassAug", "ImageSets/Segmentation",
                   "VOCtrainval_11-May-2012.tar", "train_aug.txt"):
        assert needle in msg
    assert isinstance(exc.value, FileNotFoundError)


def test_root_without_voc_content(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="JPEGImages"):
        VOCSegmentation(tmp_path)


def test_unknown_split(voc_tree: Tree) -> None:
    with pytest.raises(ValueError) as exc:
        VOCSegmentation(voc_tree.voc, split="test")
    msg = str(exc.value)
    assert "'test'" in msg
    for s in ("train_aug", "train", "val"):
        assert f"'{s}'" in msg


def test_missing_list_file(voc_tree: Tree) -> None:
    val_list = voc_tree.voc / "ImageSets" / "Segmentation" / "val.txt"
    val_list.unlink()
    with pytest.raises(DatasetNotFoundError) as exc:
        VOCSegmentation(voc_tree.voc, split="val")
    assert str(val_list) in str(exc.value)

    (voc_tree.voc / "ImageSets" / "Segmentation" / "train_aug.txt").unlink()
    with pytest.raises(DatasetNotFoundError) as exc:
        VOCSegmentation(voc_tree.voc, split="train_aug")
    msg = str(exc.value)
    for p in ("ImageSets/Segmentation/train_aug.txt", "ImageSets/SegmentationAug/train_aug.txt"):
        assert str(voc_tree.voc / p) in msg
    assert str(voc_tree.voc / "train_aug.txt") in msg


def test_train_aug_requires_aug_masks(tmp_path: Path) -> None:
    tree = _build(tmp_path, with_aug=False)
    with pytest.raises(DatasetNotFoundError, match="SegmentationClassAug"):
        VOCSegmentation(tree.voc, split="train_aug")


def test_incomplete_tree(voc_tree: Tree) -> None:
    img = voc_tree.voc / "JPEGImages" / f"{TRAIN_AUG[1]}.jpg"
    mask = voc_tree.voc / "SegmentationClassAug" / f"{TRAIN_AUG[3]}.png"
    img.unlink()
    mask.unlink()
    with pytest.raises(DatasetNotFoundError) as exc:
        VOCSegmentation(voc_tree.voc, split="train_aug")
    msg = str(exc.value)
    assert "2 file(s)" in msg
    assert str(img) in msg and str(mask) in msg
    # Splits that do not list the removed ids are unaffected.
    assert len(VOCSegmentation(voc_tree.voc, split="train")) == len(TRAIN)


# ---------------------------------------------------------- load-time checks
def test_bad_mask_value(voc_tree: Tree) -> None:
    name = TRAIN[0]
    m = voc_tree.masks[name].copy()
    m[5, 5] = 21
    m[6, 6] = 200
    path = voc_tree.voc / "SegmentationClassAug" / f"{name}.png"
    Image.fromarray(m).save(path)
    ds = VOCSegmentation(voc_tree.voc, split="train")
    with pytest.raises(ValueError) as exc:
        ds[0]
    msg = str(exc.value)
    assert str(path) in msg and "21" in msg and "200" in msg
    ds[1]  # other samples still load


def test_size_mismatch(voc_tree: Tree) -> None:
    name = TRAIN[1]  # image is 30x20 (HxW)
    path = voc_tree.voc / "SegmentationClassAug" / f"{name}.png"
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(path)
    ds = VOCSegmentation(voc_tree.voc, split="train")
    with pytest.raises(ValueError) as exc:
        ds[1]
    msg = str(exc.value)
    assert name in msg and str(path) in msg
    assert "30x20" in msg and "20x30" in msg


def test_colour_map_matches_the_published_voc_colours() -> None:
    cmap = voc_colour_map()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 4: (0, 0, 128),
             15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    for label, rgb in known.items():
        assert tuple(cmap[label]) == rgb, VOC_CLASSES[label] if label < 21 else "void"
