"""The synthetic video world: determinism, scribbles inside their regions, the true flow's warp test,
the estimated flow, the knobs, the data set and its cache."""

from __future__ import annotations

import numpy as np
import pytest

from s2d_core.cache import CacheWarning
from s2d_core.data.config import VideoWorldConfig
from s2d_core.data.presets import get_video_preset
from s2d_core.data.video import (BACKGROUND, FOREGROUND, SyntheticVideo, estimate_flow, flow_to_rgb, render_clip,
                                 warp)

CFG = VideoWorldConfig(n_frames=6, n_train=4, n_test=2, name="test")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))


def test_clips_are_deterministic_by_seed_and_differ_between_indices_and_splits():
    a, b = render_clip(CFG, "train", 3), render_clip(CFG, "train", 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["frames"], render_clip(CFG, "train", 4)["frames"])
    assert not np.array_equal(a["frames"], render_clip(CFG, "test", 3)["frames"])
    other = VideoWorldConfig(n_frames=6, world_seed=1)
    assert not np.array_equal(a["frames"], render_clip(other, "train", 3)["frames"])


def test_shapes_and_value_ranges():
    c = render_clip(CFG, "train", 0)
    T, n = CFG.n_frames, CFG.image_size
    assert c["frames"].shape == (T, n, n, 3) and c["frames"].dtype == np.uint8
    assert c["masks"].shape == c["scribbles"].shape == c["valid"].shape == (T, n, n)
    assert c["true_flow"].shape == (T, 2, n, n)
    assert set(np.unique(c["masks"])) <= {0, 1} and set(np.unique(c["scribbles"])) <= {0, 1, 2}
    assert not c["valid"][-1].any() and not c["true_flow"][-1].any()  # no frame after the last


@pytest.mark.parametrize("index", range(6))
def test_scribbles_lie_inside_their_regions_and_cover_a_few_percent(index):
    c = render_clip(VideoWorldConfig(n_frames=4), "train", index)
    fg, bg = c["scribbles"] == FOREGROUND, c["scribbles"] == BACKGROUND
    assert not (fg & (c["masks"] == 0)).any(), "a foreground stroke leaves the salient object"
    assert not (bg & (c["masks"] == 1)).any(), "a background stroke touches the salient object"
    share = (c["scribbles"] > 0).mean()
    assert 0.002 < share < 0.08, share
    visible = c["masks"].reshape(len(c["masks"]), -1).sum(1) >= 20
    assert fg.reshape(len(fg), -1).any(1)[visible].all(), "a frame with a visible object has no foreground stroke"


def test_scribble_every_k_th_frame():
    c = render_clip(VideoWorldConfig(n_frames=7, scribble_every=3), "train", 1)
    np.testing.assert_array_equal(c["annotated"], [True, False, False, True, False, False, True])
    assert not c["scribbles"][~c["annotated"]].any()


@pytest.mark.parametrize("index", range(6))
def test_warping_the_next_frame_by_the_true_flow_reproduces_the_frame_outside_occlusions(index):
    c = render_clip(VideoWorldConfig(n_frames=5, noise_std=0.0), "train", index)
    f = c["frames"].astype(np.float64) / 255
    for t in range(len(f) - 1):
        v = c["valid"][t]
        assert v.mean() > 0.5
        err = np.abs(warp(f[t + 1], c["true_flow"][t]) - f[t])[v].mean()
        assert err < 0.03, (t, err)
        moving = v & (np.hypot(*c["true_flow"][t]) > 0.75)
        if moving.sum() > 50:  # where things move, the warp explains the change; no warp does not
            still = np.abs(f[t + 1] - f[t])[moving].mean()
            assert np.abs(warp(f[t + 1], c["true_flow"][t]) - f[t])[moving].mean() < 0.6 * still


def test_the_salient_object_moves_relative_to_the_background_and_distractors_do_not():
    cfg = VideoWorldConfig(n_frames=6, max_distractors=2)
    for i in range(8):
        c = render_clip(cfg, "train", i)
        fl, layers = c["true_flow"][:-1], c["layers"][:-1]
        for t in range(len(fl)):
            ref = fl[t][:, layers[t] == 0].mean(1)
            if (layers[t] == 1).any():  # distractors: exactly the background's motion
                np.testing.assert_allclose(fl[t][:, layers[t] == 1].mean(1), ref, atol=1e-4)
            if (layers[t] == 2).sum() > 10:
                rel = np.hypot(*(fl[t][:, layers[t] == 2].mean(1) - ref))
                assert rel > 0.5 * cfg.speed_px[0], rel


def test_camouflage_brings_the_object_close_to_the_background():
    def colour_gap(cfg):
        gaps = []
        for i in range(12):
            c = render_clip(cfg, "train", i)
            m = c["masks"][0] == 1
            if m.sum() > 20:
                f = c["frames"][0].astype(float) / 255
                gaps.append(np.linalg.norm(f[m].mean(0) - f[(c["layers"][0] == 0)].mean(0)))
        return np.mean(gaps)
    assert colour_gap(VideoWorldConfig(n_frames=2, camouflage_prob=1.0, camouflage=1.0)) < \
        0.5 * colour_gap(VideoWorldConfig(n_frames=2, camouflage_prob=0.0))


def test_estimated_flow_is_close_to_the_truth_and_colour_coded():
    c = render_clip(VideoWorldConfig(n_frames=4), "train", 0)
    est = estimate_flow(c["frames"])
    assert est.shape == c["true_flow"].shape and est.dtype == np.float32
    epe = np.hypot(*(est[:-1] - c["true_flow"][:-1]).transpose(1, 0, 2, 3)).mean()
    speed = np.hypot(*c["true_flow"][:-1].transpose(1, 0, 2, 3)).mean()
    assert epe < max(0.6, 0.8 * speed), (epe, speed)
    rgb = flow_to_rgb(est[0])
    assert rgb.shape == (64, 64, 3) and 0 <= rgb.min() and rgb.max() <= 1
    np.testing.assert_allclose(flow_to_rgb(np.zeros((2, 4, 4))), 1.0)  # still = white
    with pytest.raises(ValueError, match=r"frames must be \(T, H, W, 3\) uint8"):
        estimate_flow(c["frames"].astype(np.float32))
    with pytest.raises(ValueError, match=r"flow must be \(2, H, W\)"):
        flow_to_rgb(np.zeros((3, 4, 4)))


def test_config_is_validated():
    with pytest.raises(ValueError, match="camouflage"):
        VideoWorldConfig(camouflage=1.5)
    with pytest.raises(ValueError, match="speed_px"):
        VideoWorldConfig(speed_px=(3.0, 1.0))
    with pytest.raises(ValueError, match="unknown split"):
        CFG.split_size("val")
    with pytest.raises(ValueError, match="unknown video preset"):
        get_video_preset("video_huge")


def test_data_set_items_and_cache(tmp_path):
    ds = SyntheticVideo(CFG, "train", progress=False)
    item = ds[1]
    assert item["frames"].shape == (6, 3, 64, 64) and 0 <= float(item["frames"].min()) <= float(item["frames"].max()) <= 1
    assert item["flow"].shape == (6, 2, 64, 64) and item["masks"].shape == (6, 64, 64)
    assert item["name"] == "train-0001"
    again = SyntheticVideo(CFG, "train", progress=False)  # from the cache
    np.testing.assert_array_equal(again.data["frames"], ds.data["frames"])
    np.testing.assert_array_equal(again.data["flow"], ds.data["flow"])
    files = list((tmp_path / "cache" / "video").glob("test-train-*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"not an npz")
    with pytest.warns(CacheWarning, match="video world test/train"):
        SyntheticVideo(CFG, "train", progress=False)  # a corrupt entry is named and rebuilt
    with pytest.raises(IndexError, match="out of range"):
        ds[10]


def test_clips_flagged_as_entering_or_leaving_have_the_object_centre_outside_the_frame_at_one_end():
    from s2d_core.data.video import _Clip

    cfg = VideoWorldConfig(n_frames=6, enter_leave_prob=1.0)
    n = cfg.image_size
    for i in range(12):
        clip = _Clip(cfg, np.random.default_rng([cfg.world_seed, 0, i, 7]))
        assert clip.enters_or_leaves
        out = [max(-0.5 - p.min(), p.max() - (n - 0.5)) for p in (clip.pos[0], clip.pos[-1])]
        assert max(out) >= 0.15 * clip.radius, (i, clip.pos[0], clip.pos[-1])


def test_noise_does_not_move_the_scribbles():
    a = render_clip(VideoWorldConfig(n_frames=3, noise_std=0.0), "train", 2)
    b = render_clip(VideoWorldConfig(n_frames=3, noise_std=0.05), "train", 2)
    np.testing.assert_array_equal(a["scribbles"], b["scribbles"])
