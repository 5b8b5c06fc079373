"""The pretraining world and the pre-trained backbones, measured without any method.

Two measurements, each written to ``benchmarks/records/pretraining/<what>.json`` (and printed):

``world``     statistics of the pretraining world (classes, objects per image, occlusion, class
              frequencies) and of each backbone's pre-training (wall time, throughput, loss,
              accuracy on the world's test split). Seconds.
``schedule``  the fine-tuning epochs of the ``cpu`` preset, chosen on held-out *training* images:
              each network is fine-tuned from the pre-trained backbone on training images 0-1599
              for each candidate number of epochs and scored on training images 1600-1999 (the
              classifiers by tag mAP, the segmenter -- trained on ground truth, as the fully
              supervised bound -- by mIoU). The rule, fixed before the runs: the fewest epochs
              within 0.005 mAP (classifiers) or 0.01 mIoU (segmenter) of the best candidate.
              Candidates: classifier 2/4/8, segmenter 3/6 epochs (from scratch both train 12).
              The ViT is not pre-trained in the ``cpu`` preset (its recipe learnt nothing in its
              budget: ``vit-attempt.json``), so it keeps its from-scratch schedule. About 8 minutes.

    python -m benchmarks.pretraining world|schedule

What the features know (a linear probe and the region cosines, scratch vs pretrained) is
measured live by the chapter "Where features come from" (``book/pretraining.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch.utils.data import Dataset

from s2d_core.data import get_dataset
from s2d_core.data.pretraining import SHAPE_CLASSES, render_pretraining_scene
from s2d_core.eval.segmentation import SegmentationMeter
from s2d_core.models.classifier import Classifier
from s2d_core.models.objective import MaskLoss, TagLoss
from s2d_core.models.segmenter import Segmenter
from s2d_core.pipeline import get_pipeline
from s2d_core.pipeline.pretrained import pretrained_weights, with_init
from s2d_core.train.loops import fit, predict_masks

from .suites import write_record

RECORDS = Path(__file__).resolve().parent / "records" / "pretraining"
CANDIDATES = {"classifier": (2, 4, 8), "segmenter": (3, 6)}
TOLERANCE = {"classifier": 0.005, "segmenter": 0.01}
N_FIT, N_HELD = 1600, 400


def _write(name: str, record: dict) -> Path:
    return write_record(RECORDS / f"{name}.json", record)


def world_stats(n: int = 2000) -> dict:
    """Statistics of the ``cpu`` preset's pretraining world (first ``n`` training scenes) and pre-training."""
    cfg = get_pipeline("cpu")
    w = cfg.pretraining.world
    objs, vis, sizes, freq = [], [], [], np.zeros(w.n_classes)
    for i in range(n):
        s = render_pretraining_scene(w, "train", i)
        objs.append(len(s["classes"]))
        vis.extend(s["visible"].tolist())
        sizes.extend([(s["instances"] == j + 1).mean() for j in range(len(s["classes"]))])
        freq[s["classes"]] += 1
    out = {"classes": w.n_classes, "families": len({c.family for c in SHAPE_CLASSES[: w.n_classes]}),
           "train_scenes": w.n_train, "test_scenes": w.n_test, "image_size": w.image_size,
           "objects_per_image": {str(k): float(np.mean(np.array(objs) == k)) for k in range(1, w.max_objects + 1)},
           "mean_objects": float(np.mean(objs)), "occluded_share": float(np.mean(np.array(vis) < 1)),
           "mean_visible": float(np.mean(vis)), "object_area_share": float(np.mean(sizes)),
           "class_frequency_min_max": [int(freq.min()), int(freq.max())], "scenes_counted": n, "backbones": {}}
    for name, m in (("cnn", cfg.classifier),):
        _, info = pretrained_weights(m, cfg.pretraining)
        out["backbones"][name] = {k: info.get(k) for k in ("seconds", "images_per_second", "loss", "test_map",
                                                           "test_exact", "source", "key")}
    return out


class _Part(Dataset):
    """Some images of a synthetic split (fixed size; no cache identity: these runs are not cached)."""

    fixed_size = True

    def __init__(self, base, indices) -> None:
        self.base, self.indices = base, list(indices)
        self.num_classes, self.class_names = base.num_classes, base.class_names

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.base[self.indices[i]]


@torch.no_grad()
def _tag_map(model, data: Dataset) -> float:
    model.eval()
    s = torch.cat([model(torch.stack([data[j]["image"] for j in range(i, min(i + 128, len(data)))]))
                   for i in range(0, len(data), 128)]).numpy()
    y = np.stack([data[j]["tags"].numpy() for j in range(len(data))])
    return float(average_precision_score(y, s, average="macro"))


def choose_epochs(curve: list[dict], tolerance: float) -> int:
    """The rule: the fewest ``epochs`` whose held-out ``score`` is within ``tolerance`` of the best."""
    if not curve:
        raise ValueError("choose_epochs: empty curve")
    best = max(c["score"] for c in curve)
    return min(c["epochs"] for c in curve if c["score"] >= best - tolerance)


def schedule() -> dict:
    """Held-out curves of the fine-tuning epochs (module docstring) and the epochs they choose."""
    cfg = get_pipeline("cpu")
    train = get_dataset("synthetic", "train", "cpu")
    fit_set, held = _Part(train, range(N_FIT)), _Part(train, range(N_FIT, N_FIT + N_HELD))
    out = {"rule": "fewest epochs within the tolerance of the best held-out score", "tolerance": TOLERANCE,
           "fit_images": N_FIT, "held_out_images": N_HELD, "curves": {}, "chosen": {}}
    nets = {"classifier": (cfg.classifier, cfg.classifier_train, lambda c: Classifier(train.num_classes - 1, c), TagLoss()),
            "segmenter": (cfg.segmenter, cfg.segmenter_train, lambda c: Segmenter(train.num_classes, c), MaskLoss())}
    for name, (mcfg, tcfg, build, objective) in nets.items():
        ready, _ = with_init(mcfg, cfg.pretraining)
        curve = []
        for epochs in CANDIDATES[name]:
            torch.manual_seed(0)
            model = build(ready)
            info = fit(model, fit_set, objective, dataclasses.replace(tcfg, epochs=epochs), seed=0, desc=f"{name} {epochs} ep")
            if name == "segmenter":
                meter = SegmentationMeter(train.num_classes)
                preds = predict_masks(model, held, progress=False)
                for k in range(len(held)):
                    meter.update(preds[k], held[k]["mask"].numpy())
                score = meter.compute()["miou"]
            else:
                score = _tag_map(model, held)
            curve.append({"epochs": epochs, "score": score, "seconds": info["seconds"],
                          "images_per_second": info["images_per_second"], "final_loss": info["loss"][-1]})
            print(name, curve[-1], flush=True)
        out["curves"][name] = curve
        out["chosen"][name] = choose_epochs(curve, TOLERANCE[name])
        out[f"{name}_metric"] = "held-out mIoU" if name == "segmenter" else "held-out tag mAP"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.pretraining", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("world", "schedule"))
    args = ap.parse_args(argv)
    rec = {"world": world_stats, "schedule": schedule}[args.what]()
    print(json.dumps(rec, indent=1))
    print("wrote", _write(args.what, rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
