"""Loaders of DAVIS 2016 / DAVIS-S and DAVSOD / DAVSOD-S on fixture trees made here, and their errors."""

from __future__ import annotations

import json
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


def test_clips_resize_cut_and_keep_thin_strokes(tmp_path):
    from s2d_core.data.video_real import VideoClips

    root = make_davis(tmp_path / "DAVIS", n=7)
    scr = tmp_path / "DAVIS-S"
    for s in ("blackswan", "dog"):
        for t in range(7):
            _scribbles(scr, s, f"{t:05d}")
    seqs = davis2016(root, "val", scr)
    clips = VideoClips(seqs, size=(8, 10), length=3)
    assert len(clips) == 4  # 7 frames -> clips at 0 and 3 (frame 6 dropped), two sequences
    it = clips[1]
    assert it["name"] == "blackswan@3" and it["start"] == 3
    assert it["frames"].shape == (3, 3, 8, 10) and it["flow"].shape == (3, 2, 8, 10)
    assert it["masks"].shape == (3, 8, 10) and "full_masks" not in it  # training clips are scored nowhere
    # the 1-pixel strokes survive the down-scaling (a nearest sample could miss them)
    assert (it["scribbles"] == 1).any() and (it["scribbles"] == 2).any()
    whole = VideoClips(seqs, size=(8, 10), length=None)
    assert len(whole) == 2 and whole[0]["frames"].shape[0] == 7 and whole[0]["name"] == "blackswan"
    assert whole[0]["full_masks"].shape == (7, H, W)  # scored at the original resolution
    assert clips.identity()["length"] == 3 and whole.identity()["sequences"] == ["blackswan", "dog"]
    with pytest.raises(ValueError, match="no sequence has 9 frames"):
        VideoClips(seqs, size=(8, 10), length=9)
    with pytest.raises(ValueError, match="size must be"):
        VideoClips(seqs, size=(4,))


def _fixture_roots(tmp_path):
    """A DAVIS tree (train and val listings) and a DAVSOD tree with their scribble folders."""
    davis = make_davis(tmp_path / "DAVIS", seqs=("bear", "boat"), n=6)
    (davis / "ImageSets" / "480p" / "val.txt").rename(davis / "ImageSets" / "480p" / "train.txt")
    make_davis(davis, seqs=("blackswan", "dog"), n=6)
    davsod_root = tmp_path / "DAVSOD"
    make_davsod(davsod_root, "Training Set", 2, n=6)
    make_davsod(davsod_root, "Easy-35", 35, n=3)
    scr = tmp_path / "scribbles"
    for s in ("bear", "boat", "blackswan", "dog"):
        for t in range(6):
            _scribbles(scr, s, f"{t:05d}")
    for k in range(2):
        for t in range(6):
            _scribbles(scr, f"select_{k:04d}", f"{k:04d}_{t:06d}")
    return {"davis2016": davis, "davsod": davsod_root}, scr


@pytest.mark.parametrize("suite_name", ["video_davis", "video_davsod"])
def test_real_data_suites_dry_run_on_fixtures(tmp_path, monkeypatch, suite_name):
    """The shipped real-data suites' seed-0 runs, through the runner and its notebook, with the roots
    pointed at fixture trees and the tiny pipeline on the CPU: the parameters reach the run, the data
    loads, each method trains and is scored per sequence at the sequences' own resolution."""
    import yaml

    from benchmarks.execute import run_suite
    from benchmarks.suites import load_suite

    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))  # the kernels inherit it
    roots, scr = _fixture_roots(tmp_path)
    shipped = load_suite(suite_name)
    d = yaml.safe_load(shipped.path.read_text())
    assert d["defaults"]["dataset_root"].startswith("~") and d["defaults"]["scribble_root"].startswith("~")
    dataset = d["defaults"]["dataset"]
    d["defaults"].update(preset="video_tiny", init="scratch", device="cpu", dataset_root=str(roots[dataset]),
                         scribble_root=str(scr))
    d["matrix"]["seed"] = [0]
    (tmp_path / "fixture.yaml").write_text(yaml.safe_dump(d))
    suite = load_suite(tmp_path / "fixture.yaml")
    assert sorted(r["method"] for r in suite.runs) == ["fully_supervised", "scribbles", "scribbles_no_motion", "wsvsod"]
    st = run_suite(suite, tmp_path / "records", tmp_path / "logs", progress=False)
    assert not st["failed"], st["failed"]
    recs = [json.loads(p.read_text()) for p in sorted((tmp_path / "records").glob("*.json"))]
    assert len(recs) == 4 and not list((tmp_path / "records").glob("*.npz"))  # predictions: synthetic only
    for rec in recs:
        assert rec["params"]["dataset"] == dataset and rec["run_id"].startswith(dataset)
        assert rec["data"]["train"]["name"] == "VideoClips" and rec["data"]["train"]["length"] == 4
        assert rec["data"]["test"]["length"] is None
        assert rec["metrics"]["sequences"] == len(rec["per_sequence"]) == (2 if dataset == "davis2016" else 35)
        assert 0 <= rec["metrics"]["s_measure"] <= 1 and 0 <= rec["metrics"]["mae"] <= 1


def test_run_ids_do_not_depend_on_this_machine():
    """Listing a real-data suite here (no data, no GPU) names its runs as the machine that has both will."""
    from benchmarks.params import video_run_id
    from s2d_core.pipeline.video import video_run_config

    params = {"preset": "video_gpu", "dataset": "davis2016", "dataset_root": "/no/DAVIS", "scribble_root": "/no/S",
              "init": "imagenet", "device": "cuda", "method": "wsvsod", "seed": 0}
    assert video_run_id(params).startswith("davis2016-video_gpu-wsvsod-imagenet-seed0-")
    assert video_run_config(params, check_machine=False).model.encoder.init == "imagenet"


def test_real_data_parameters_are_checked(tmp_path):
    from s2d_core.pipeline.video import validate_video_params

    with pytest.raises(ValueError, match="needs dataset_root"):
        validate_video_params({"dataset": "davis2016"})
    with pytest.raises(ValueError, match="scribble_root '/no/such' does not exist"):
        validate_video_params({"dataset": "davis2016", "dataset_root": str(tmp_path), "scribble_root": "/no/such"})
    with pytest.raises(ValueError, match="only used with a real data set"):
        validate_video_params({"dataset_root": str(tmp_path)})
    with pytest.raises(ValueError, match="unknown video dataset 'youtube'"):
        validate_video_params({"dataset": "youtube"})
