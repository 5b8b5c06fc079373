"""Does a synthetic preset leave room for the book's methods?

A quick probe of a world, not a method: the book's CAM classifier (tags only) and its plain CAM
seeds on the validation split, against the same segmentation network trained on dense masks
(the fully supervised upper bound), and where the CAM's mass falls. It prints

    seed mIoU (best threshold) / fully supervised mIoU

The benchmark leaves room when this ratio is at or below about 0.7, and when the CAM's mass
sits mostly on the emblems and class contexts (incomplete objects, context leakage). The
networks are the pipeline's cached artifacts (``s2d_core.pipeline``), so after the CAM chapter
or the ``cpu`` suite the probe takes about a minute; from an empty cache, about 12 minutes.

    python -m benchmarks.headroom --preset cpu

Records of the probes run while the world was designed, with the ResNet-18 of the first
version of this script, are kept beside the current one (``history-*.json``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from s2d_core.cache import atomic_write_bytes
from s2d_core.data import get_dataset
from s2d_core.data.presets import PRESETS
from s2d_core.eval.cam_diagnostics import cam_mass
from s2d_core.eval.seeds import sweep_thresholds
from s2d_core.eval.segmentation import SegmentationMeter
from s2d_core.pipeline import build_method, get_cams, get_pipeline, get_segmenter
from s2d_core.train import predict_masks
from s2d_core.viz import cam_heatmap, draw_outline


def cam_figure(val_ds, cams, tags, class_names, n: int = 8):
    """Image + mask, and the CAM of each image's first tagged class with the object (white),
    its emblem (black) and its class context (dashed) outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.6))
    for j in range(n):
        s = val_ds[j]
        k = int(np.nonzero(tags[j])[0][0])
        cls = k + 1
        axes[0, j].imshow(s["image"].permute(1, 2, 0).numpy())
        draw_outline(axes[0, j], s["mask"] == cls)
        axes[0, j].set_title(class_names[cls], fontsize=9)
        axes[1, j].imshow(cam_heatmap(s["image"], cams[j][k].astype(np.float32)))
        draw_outline(axes[1, j], s["mask"] == cls)
        draw_outline(axes[1, j], s["emblem"] == cls, colour="black")
        draw_outline(axes[1, j], (s["context"] == cls) & (s["mask"] == 0), colour="white", linestyle="--")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image, object")
    axes[1, 0].set_ylabel("CAM")
    fig.tight_layout()
    return fig


def probe(preset: str, seed: int = 0, device: str = "cpu", progress: bool = True) -> tuple[dict, object]:
    """The probe's record (JSON-able) and its CAM figure."""
    cfg = get_pipeline(preset)
    train_ds, val_ds = get_dataset("synthetic", "train", preset), get_dataset("synthetic", "val", preset)
    method, info = build_method("cam", train_ds, cfg, seed=seed, device=device, progress=progress)
    cams = get_cams(method, val_ds, device=device, progress=progress)
    tags = np.stack([val_ds[i]["tags"].numpy() for i in range(len(val_ds))])
    masks = np.stack([val_ds[i]["mask"].numpy() for i in range(len(val_ds))])
    with torch.no_grad():
        logits = torch.cat([method.model(torch.stack([val_ds[i]["image"] for i in range(j, min(j + 64, len(val_ds)))])
                                         .to(device)).cpu() for j in range(0, len(val_ds), 64)])
    acc = float(((logits > 0).float().numpy() == tags).all(1).mean())
    seeds = sweep_thresholds(cams, tags, masks, num_classes=val_ds.num_classes)
    mass = cam_mass(cams, tags, masks, [val_ds[i]["emblem"].numpy() for i in range(len(val_ds))],
                    [val_ds[i]["context"].numpy() for i in range(len(val_ds))])
    seg, seg_info = get_segmenter(train_ds, None, cfg.segmenter, cfg.segmenter_train, seed=seed, device=device,
                                  pretraining=cfg.pretraining,
                                  progress=progress)
    meter = SegmentationMeter(val_ds.num_classes, class_names=val_ds.class_names)
    for pred, m in zip(predict_masks(seg, val_ds, device=device, progress=progress), masks):
        meter.update(pred.astype(np.int64), m)
    fs = meter.compute()
    record = {"preset": preset, "config": val_ds.config.to_dict(), "seed": seed,
              "classifier": {"backbone": cfg.classifier.backbone, "epochs": cfg.classifier_train.for_init(cfg.classifier.init).epochs,
                             "key": info["classifier"]["key"]},
              "segmenter": {"backbone": cfg.segmenter.backbone, "epochs": cfg.segmenter_train.for_init(cfg.segmenter.init).epochs,
                            "key": seg_info["key"]},
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "tag_exact_match_acc": acc, "seed_miou": seeds["best_miou"], "seed_threshold": seeds["best_threshold"],
              "seed_curve": dict(zip(map(float, seeds["thresholds"]), map(float, seeds["miou"]))),
              "fully_supervised_miou": fs["miou"], "ratio": seeds["best_miou"] / fs["miou"],
              "cam_mass": {k: float(v) for k, v in mass.items()},
              "train_seconds": {"classifier": info["classifier"]["seconds"], "segmenter": seg_info["seconds"]}}
    return record, cam_figure(val_ds, cams, tags, val_ds.class_names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/records/headroom",
                    help="folder of the JSON record (committed: the book shows it)")
    a = ap.parse_args(argv)
    if a.seed < 0:
        ap.error(f"--seed must be >= 0, got {a.seed}")
    record, fig = probe(a.preset, a.seed, a.device)
    print(json.dumps({k: v for k, v in record.items() if k != "config"}, indent=1))
    out = Path(a.out) / f"{a.preset}-seed{a.seed}.json"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    atomic_write_bytes(out.with_name(out.stem + "-cams.png"), buf.getvalue())
    atomic_write_bytes(out, json.dumps(record, indent=1).encode())
    print(f"wrote {out} and its CAM figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
