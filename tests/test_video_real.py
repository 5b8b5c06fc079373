"""Loaders of DAVIS 2016 / DAVIS-S and DAVSOD / DAVSOD-S on fixture trees made here, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s2d_core.data.video_real import DAVIS2016_VAL, davis2016, davsod

H, W = 12, 16


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _mask(t: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[2:8, 3 + t:9 + t] = 255
    return m


def _scribbles(root: Path, seq: str, frame: str) -> None:
    gt, lab = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    gt[4, 4:7] = 255             # a foreground stroke
    lab[4, 4:7] = 255            # mask/ holds every labelled pixel ...
    lab[10, 0:10] = 255          # ... the background stroke too
    _png(root / seq / "gt" / f"{frame}.png", gt)
    _png(root / seq / "mask" / f"{frame}.png", lab)


def make_davis(root: Path, seqs=("blackswan", "dog"), n=3, listing=True) -> Path:
    for s in seqs:
        for t in range(n):
            _png(root / "JPEGImages" / "480p" / s / f"{t:05d}.jpg", _frame(t))
            _png(root / "Annotations" / "480p" / s / f"{t:05d}.png", _mask(t))
    if listing:
        lines = [f"/JPEGImages/480p/{s}/{t:05d}.jpg /Annotations/480p/{s}/{t:05d}.png" for s in seqs for t in range(n)]
        (root / "ImageSets" / "480p").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return root


def make_davsod(root: Path, split_folder: str, n_seq: int, n=2) -> Path:
    for k in range(n_seq):
        for t in range(n):
            _png(root / split_folder / f"select_{k:04d}" / "Imgs" / f"{k:04d}_{t:06d}.png", _frame(k * 10 + t))
            _png(root / split_folder / f"select_{k:04d}" / "GT_object_level" / f"{k:04d}_{t:06d}.png", _mask(t))
    return root


def test_davis_reads_frames_masks_and_the_split_listing(tmp_path):
    ds = davis2016(make_davis(tmp_path / "DAVIS"), "val")
    assert ds.names == ["blackswan", "dog"]
    item = ds[1]
    assert item["frames"].shape == (3, 3, H, W) and 0 <= float(item["frames"].min()) <= float(item["frames"].max()) <= 1
    assert item["masks"].shape == (3, H, W) and set(item["masks"].unique().tolist()) == {0, 1}
    np.testing.assert_array_equal(item["masks"][1].numpy(), _mask(1) > 0)
    assert not item["annotated"].any() and item["frame_names"] == ["00000", "00001", "00002"]


def test_davis_without_listing_uses_the_official_val_sequences(tmp_path):
    root = make_davis(tmp_path / "DAVIS", seqs=DAVIS2016_VAL[:2], listing=False)
    with pytest.raises(FileNotFoundError, match=r"18 of 20 sequences have no frames.*DAVIS-data.zip"):
        davis2016(root, "val")  # the official list names 20 sequences; 18 are missing
    make_davis(root, seqs=DAVIS2016_VAL, n=1, listing=False)
    assert len(davis2016(root, "val")) == 20


def test_scribbles_gt_is_the_foreground_stroke_and_mask_every_labelled_pixel(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    scr = tmp_path / "DAVIS-S"
    for s in ("blackswan", "dog"):
        _scribbles(scr, s, "00000")  # only the first frame is annotated
        (scr / s / "gt").mkdir(parents=True, exist_ok=True)
    item = davis2016(root, "val", scribbles=scr)[0]
    s0 = item["scribbles"][0].numpy()
    assert (s0 == 1).sum() == 3 and (s0[4, 4:7] == 1).all()          # gt/ -> foreground
    assert (s0 == 2).sum() == 10 and (s0[10, 0:10] == 2).all()       # mask/ without gt/ -> background
    assert item["annotated"].tolist() == [True, False, False]
    assert not item["scribbles"][1:].any()


def test_davis_errors_name_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"DAVIS 2016 root.*DAVIS-data.zip"):
        davis2016(tmp_path / "nothing", "val")
    root = make_davis(tmp_path / "DAVIS")
    (root / "Annotations" / "480p" / "dog" / "00001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 sequences .* lack masks.*'dog'"):
        davis2016(root, "val")
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        davis2016(root, "test")
    root2 = make_davis(tmp_path / "DAVIS2")
    with pytest.raises(FileNotFoundError, match="scribble root .* does not exist"):
        davis2016(root2, "val", scribbles=tmp_path / "no-scribbles")
    (tmp_path / "S" / "blackswan" / "gt").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"lacks <sequence>/gt and <sequence>/mask for 2 sequence"):
        davis2016(root2, "val", scribbles=tmp_path / "S")


def test_davsod_splits_and_the_test_set(tmp_path):
    root = tmp_path / "DAVSOD"
    make_davsod(root, "Easy-35", 35)
    ds = davsod(root, "Easy-35")
    assert len(ds) == 35 and ds[0]["frames"].shape == (2, 3, H, W)
    make_davsod(root, "DAVSOD-Normal-25", 25)   # the prefixed folder name is accepted too
    assert len(davsod(root, "Normal-25")) == 25
    with pytest.raises(FileNotFoundError, match=r"Difficult-20: none of the folders"):
        davsod(root, "test")
    make_davsod(root, "Difficult-20", 20)
    assert len(davsod(root, "test")) == 80


def test_davsod_errors(tmp_path):
    root = make_davsod(tmp_path / "DAVSOD", "Easy-35", 34)
    with pytest.raises(FileNotFoundError, match=r"found 34 sequences .* the release has 35"):
        davsod(root, "Easy-35")
    with pytest.raises(ValueError, match="DAVSOD split must be one of"):
        davsod(root, "Hard-10")
    root = make_davsod(tmp_path / "D2", "Training Set", 2)
    (root / "Training Set" / "select_0001" / "GT_object_level" / "0001_000000.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"lack GT_object_level.*select_0001"):
        davsod(root, "train")
