"""The video world and the video baselines' schedule, measured before any method runs on them.

``world``     statistics of the ``video_cpu`` world's splits (:func:`s2d_core.data.stats.video_statistics`):
              camouflage, distractors, occlusion, object size and speed, scribble density, flow error.
``schedule``  the epochs of the ``video_cpu`` baselines, chosen on held-out *training* clips: the
              fully supervised network (dense masks, the upper bound) is trained on the first 80 %
              of the training clips (video_cpu: 0-119) for each candidate number of epochs (2, 4, 8:
              the largest that fits the ~10 min per model of the issue) and
              scored by S-measure on the rest (120-149);
              the rule, fixed before the runs: the fewest epochs within 0.01 S of the best
              candidate. Every method then trains for those epochs (no per-method tuning).
``probe``     30 s of training throughput of each network kind (windows per second), for the
              suite's wall-time estimate.

    python -m benchmarks.video world|schedule|probe      # writes benchmarks/records/video/<what>.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from s2d_core.data.presets import get_video_preset
from s2d_core.data.stats import video_statistics
from s2d_core.data.video import SyntheticVideo
from s2d_core.eval.video_saliency import VideoSaliencyMeter
from s2d_core.models.video_saliency import SaliencyNet
from s2d_core.pipeline.pretrained import with_init
from s2d_core.pipeline.video import VIDEO_PIPELINES
from s2d_core.train.loops import fit
from s2d_core.train.video import ClipWindows, DenseSaliencyLoss, ScribbleSaliencyLoss, predict_saliency

from .pretraining import choose_epochs
from .suites import write_record

RECORDS = Path(__file__).resolve().parent / "records" / "video"
# the budget is about 10 min per model: the probe measured 71 s per epoch of the motion
# networks on 2 cores (records/video/probe.json), so 8 epochs is the largest candidate that fits
CANDIDATES = (2, 4, 8)
TOLERANCE = 0.01
HELD_SHARE = 0.2  # the last 20 % of the training clips are held out (video_cpu: 120 fit, 30 held out)


def _write(name: str, record: dict) -> Path:
    return write_record(RECORDS / f"{name}.json", record)


def world(preset: str = "video_cpu") -> dict:
    cfg = get_video_preset(preset)
    return {"preset": preset, "config": cfg.to_dict(),
            **{split: video_statistics(SyntheticVideo(cfg, split).data) for split in ("train", "test")}}


class _Clips(Dataset):
    """Some clips of a video split (no cache identity: these trainings are not cached)."""

    fixed_size = True

    def __init__(self, base, indices) -> None:
        self.base, self.indices = base, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.base[self.indices[i]]


def schedule(preset: str = "video_cpu") -> dict:
    cfg = VIDEO_PIPELINES[preset]
    train = SyntheticVideo(get_video_preset(preset), "train")
    n_held = max(1, round(HELD_SHARE * len(train)))
    fit_set, held = _Clips(train, range(len(train) - n_held)), _Clips(train, range(len(train) - n_held, len(train)))
    encoder, _ = with_init(cfg.model.encoder, cfg.pretraining)
    model_cfg = dataclasses.replace(cfg.model, encoder=encoder)
    curve = []
    for epochs in CANDIDATES:
        torch.manual_seed(0)
        net = SaliencyNet(model_cfg)
        # the chosen value goes into TrainConfig.epochs (pretrained_epochs stays unset, so runs train exactly this)
        info = fit(net, ClipWindows(fit_set, cfg.window), DenseSaliencyLoss(),
                   dataclasses.replace(cfg.train, epochs=epochs, pretrained_epochs=None),
                   seed=0, desc=f"fully supervised {epochs} ep", flips=False)
        pred = predict_saliency(net, held, progress=False)
        meter = VideoSaliencyMeter(cfg.skip_ends)
        for k in range(len(held)):
            meter.update(f"clip{k}", pred[k], held[k]["masks"].numpy())
        curve.append({"epochs": epochs, "score": meter.compute()["s_measure"], "seconds": info["seconds"],
                      "final_loss": info["loss"][-1]})
        print(curve[-1], flush=True)
    return {"rule": "fewest epochs within the tolerance of the best held-out S-measure (fully supervised network)",
            "tolerance": TOLERANCE, "fit_clips": len(fit_set), "held_out_clips": len(held), "curve": curve,
            "chosen": choose_epochs(curve, TOLERANCE)}


def probe(preset: str = "video_cpu", seconds: float = 30.0) -> dict:
    cfg = VIDEO_PIPELINES[preset]
    train = SyntheticVideo(get_video_preset(preset), "train")
    windows = ClipWindows(train, cfg.window)
    encoder, _ = with_init(cfg.model.encoder, cfg.pretraining)
    out = {}
    for label, motion, loss in (("scribbles", "stream", ScribbleSaliencyLoss(similarity_weight=0.0)),
                                ("wsvsod", "stream", ScribbleSaliencyLoss()), ("no motion", "none", ScribbleSaliencyLoss(similarity_weight=0.0))):
        net = SaliencyNet(dataclasses.replace(cfg.model, encoder=encoder, motion=motion)).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            items = [windows[(n + j) % len(windows)] for j in range(cfg.train.batch_size)]
            batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "flow_image", "scribbles", "masks")}
            opt.zero_grad()
            loss(net, batch).backward()
            opt.step()
            n += cfg.train.batch_size
        rate = n / (time.perf_counter() - t0)
        out[label] = {"windows_per_second": rate, "epoch_seconds": len(windows) / rate}
        print(label, out[label], flush=True)
    return {"preset": preset, "windows_per_epoch": len(windows), **out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.video", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("world", "schedule", "probe"))
    ap.add_argument("--preset", default="video_cpu", choices=sorted(VIDEO_PIPELINES))
    args = ap.parse_args(argv)
    rec = {"world": world, "schedule": schedule, "probe": probe}[args.what](args.preset)
    print(json.dumps(rec, indent=1))
    if args.preset == "video_cpu":
        print("wrote", _write(args.what, rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
