"""The video saliency baselines on the tiny video world: the network, its losses, caching, prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2d_core.data.video import BACKGROUND, FOREGROUND, SyntheticVideo
from s2d_core.eval.video_saliency import VideoSaliencyMeter
from s2d_core.models.config import ModelConfig, VideoModelConfig
from s2d_core.models.video_saliency import SaliencyNet
from s2d_core.pipeline import get_video_saliency
from s2d_core.train import TrainConfig
from s2d_core.train.video import (ClipWindows, DenseSaliencyLoss, ScribbleSaliencyLoss, cross_frame_similarity,
                                  predict_saliency, smoothness)

SCRATCH = VideoModelConfig(encoder=ModelConfig(init="scratch"))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import os
    os.environ["S2D_CACHE_DIR"] = str(tmp_path_factory.mktemp("video-cache"))
    return SyntheticVideo("video_tiny", "train", progress=False)


def test_windows_cover_every_frame(tiny):
    w = ClipWindows(tiny, 3)
    T = tiny[0]["frames"].shape[0]          # 4 frames: windows start at 0 and 1
    assert [s for c, s in w.windows if c == 0] == [0, T - 3]
    item = w[1]
    assert item["image"].shape == (3, 3, 64, 64) and item["flow_image"].shape == (3, 3, 64, 64)
    assert 0 <= float(item["flow_image"].min()) and float(item["flow_image"].max()) <= 1
    with pytest.raises(ValueError, match="fewer than the window length"):
        ClipWindows(tiny, 9)


def test_network_shapes_and_motion_input_is_required():
    net = SaliencyNet(SCRATCH).eval()
    x = torch.rand(2, 3, 64, 64)
    out = net(x, torch.rand(2, 3, 64, 64))
    assert out["logits"].shape == (2, 1, 64, 64) and out["features"].shape[:2] == (2, SCRATCH.decoder_dim)
    with pytest.raises(ValueError, match="needs flow images"):
        net(x)
    assert SaliencyNet(VideoModelConfig(encoder=ModelConfig(init="scratch"), motion="none")).eval()(x)["logits"].shape \
        == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="motion"):
        VideoModelConfig(motion="flow")


def test_smoothness_ignores_changes_at_image_edges():
    img = torch.zeros(1, 3, 8, 8)
    img[..., 4:] = 1.0                                   # an image edge between columns 3 and 4
    sal_on_edge = torch.zeros(1, 1, 8, 8)
    sal_on_edge[..., 4:] = 1.0
    sal_off_edge = torch.zeros(1, 1, 8, 8)
    sal_off_edge[..., 2:] = 1.0
    assert smoothness(sal_on_edge, img) < 0.01 * smoothness(sal_off_edge, img)


def test_cross_frame_similarity_rewards_features_that_agree_with_the_labels():
    labels = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    labels[:, :, 0, :2] = FOREGROUND
    labels[:, :, 3, 2:] = BACKGROUND
    good = torch.zeros(1, 2, 2, 4, 4)
    good[:, :, 0] = (labels == FOREGROUND).float()
    good[:, :, 1] = (labels == BACKGROUND).float()
    bad = good.flip(2)
    bad[:, 1] = good[:, 1]                               # frame 1 keeps the good features: labels disagree
    assert cross_frame_similarity(good, labels, 8) < cross_frame_similarity(bad, labels, 8)
    assert cross_frame_similarity(good, torch.zeros_like(labels), 8) == 0


def test_training_is_cached_and_predictions_are_evaluated(tiny):
    cfg = TrainConfig(epochs=1, batch_size=2)
    net, info = get_video_saliency(tiny, SCRATCH, cfg, seed=0, window=2, progress=False)
    again, info2 = get_video_saliency(tiny, SCRATCH, cfg, seed=0, window=2, progress=False)
    assert not info["from_cache"] and info2["from_cache"] and info["key"] == info2["key"]
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)
    dense, d_info = get_video_saliency(tiny, SCRATCH, cfg, objective=DenseSaliencyLoss(), seed=0, window=2,
                                       progress=False)
    assert d_info["key"] != info["key"]
    pred = predict_saliency(net, tiny, progress=False)
    assert pred.shape == (len(tiny), 4, 64, 64) and 0 <= pred.min() and pred.max() <= 1
    meter = VideoSaliencyMeter()
    for i in range(len(tiny)):
        meter.update(tiny[i]["name"], pred[i], tiny[i]["masks"].numpy())
    r = meter.compute()
    assert r["sequences"] == len(tiny) and 0 <= r["s_measure"] <= 1 and np.isfinite(r["max_f"])


def test_scribble_loss_needs_scribbles(tiny):
    from s2d_core.pipeline.artifacts import _check_labels

    class NoScribbles(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"image": torch.zeros(2, 3, 64, 64)}
    with pytest.raises(ValueError, match=r"needs \['scribbles'\]"):
        _check_labels(NoScribbles(), ScribbleSaliencyLoss())


@pytest.mark.parametrize("method", ["scribbles", "scribbles_no_motion", "wsvsod", "fully_supervised"])
def test_video_run_trains_and_evaluates_every_method(method):
    from s2d_core.pipeline.video import VideoRun

    run = VideoRun(preset="video_tiny", method=method, init="scratch", seed=0, progress=False)
    record = run.run()
    m = record["metrics"]
    assert 0 <= m["s_measure"] <= 1 and 0 <= m["mae"] <= 1 and m["sequences"] == len(run.test_set)
    assert m["warping_error_floor"] == 0.0 and m["warping_error"] >= 0 and m["warping_error_gt"] >= 0
    assert record["config"]["model"]["motion"] == ("none" if method.endswith("no_motion") else "stream")


def test_video_run_parameters_are_checked():
    from s2d_core.pipeline.video import validate_video_params

    with pytest.raises(ValueError, match="unknown video method 'cfmr'"):
        validate_video_params({"method": "cfmr"})
    with pytest.raises(ValueError, match="unknown video preset"):
        validate_video_params({"preset": "cpu"})
    with pytest.raises(ValueError, match="unknown video parameter"):
        validate_video_params({"refine": "crf"})
    with pytest.raises(ValueError, match="seed must be"):
        validate_video_params({"seed": -1})
