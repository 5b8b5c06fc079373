"""Cells per object: does the prototype methods' gap to CAM depend on how many feature cells an object covers?

At 64 px and output stride 8 an object of the ``cpu`` world covers a few dozen feature cells at
most (PASCAL VOC at 512 px and stride 16: hundreds); prototypes and transport compare cells, and
with few cells a prototype is an average over a handful of them. This probe reads the *same*
trained classifiers (the ``cpu`` suite's seed 0: ``cpu-scratch`` and the pre-trained ``cpu``) on
a finer feature grid by enlarging the input ``s`` times before the network (one scale, no flip;
the maps are resized back to 64 px), so every object covers ``s^2`` times more cells, and
measures seed mIoU of CAM and of each prototype method on the first ``n`` training images.
Nothing is trained and the ``cpu`` world is not changed: a network trained at 64 px that reads
larger objects is off its training scale, which is why CAM's own row is shown beside each gap.

    python -m benchmarks.cells_probe [--n 300] [--scales 1 2 3] [--scratch-methods cam prototype_cam]
    # ~5 min on 2 cores when the networks are cached

Writes ``benchmarks/records/cells_probe/probe.json`` and ``probe.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from s2d_core.cache import atomic_write_bytes
from s2d_core.cam.base import compute_cams
from s2d_core.cam.config import CAMConfig
from s2d_core.data import get_dataset
from s2d_core.eval.seeds import sweep_thresholds
from s2d_core.pipeline import build_method, get_pipeline
from s2d_core.tables import to_markdown

RECORDS = Path(__file__).resolve().parent / "records" / "cells_probe"
METHODS = ("cam", "prototype_cam", "mutual_calibration", "multi_prototype_ot")
PRESETS = {"scratch": "cpu-scratch", "pretrained": "cpu"}
STRIDE = 8  # the cpu preset's output stride


class _Fixed(Subset):
    """A subset that keeps the synthetic data's one image size (batched map read-out)."""

    fixed_size = True


def cells_per_object(dataset, scale: float) -> float:
    """Mean number of ``STRIDE x STRIDE`` feature cells a class region of an image covers (two
    touching objects of one class count as one region) when the image is enlarged ``scale`` times."""
    areas = []
    for i in range(len(dataset)):
        mask = dataset[i]["mask"].numpy()
        areas += [int((mask == c).sum()) for c in np.unique(mask) if 0 < c < 255]
    return float(np.mean(areas) * scale ** 2 / STRIDE ** 2)


def probe(n: int = 300, scales: tuple[float, ...] = (1.0, 2.0, 3.0), seed: int = 0, progress: bool = True,
          methods: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Seed mIoU of each regime's ``methods`` (default: all of :data:`METHODS` in both) at each scale."""
    methods = methods or {regime: METHODS for regime in PRESETS}
    train = get_dataset("synthetic", "train", "cpu", progress=progress)
    data = _Fixed(train, list(range(n)))
    tags = [data[i]["tags"].numpy() for i in range(n)]
    masks = [data[i]["mask"].numpy() for i in range(n)]
    rows = []
    for regime, preset in PRESETS.items():
        cfg = get_pipeline(preset)
        for name in methods.get(regime, ()):
            method, info = build_method(name, train, cfg, seed=seed, progress=progress)
            for s in scales:
                method.cam_cfg = CAMConfig(scales=(float(s),), flip=False)
                t0 = time.perf_counter()
                cams = compute_cams(method, data, progress=progress, desc=f"{regime} {name} x{s:g}")
                sweep = sweep_thresholds(cams, tags, masks, train.num_classes)
                rows.append({"regime": regime, "method": name, "scale": float(s), "seed_miou": float(sweep["best_miou"]),
                             "threshold": float(sweep["best_threshold"]), "seconds": time.perf_counter() - t0,
                             "classifier_from_cache": bool(info["classifier"]["from_cache"])})
    cells = [cells_per_object(data, s) for s in scales]  # aligned with scales
    return {"n_images": n, "seed": seed, "stride": STRIDE, "scales": [float(s) for s in scales],
            "cells_per_object": cells, "rows": rows,
            "cam_config": dataclasses.asdict(CAMConfig(scales=(1.0,), flip=False))}


def probe_markdown(record: dict) -> str:
    """Seed mIoU (%) per regime, scale and method, and each prototype method's gap to CAM."""
    rows = record["rows"]
    lines = []
    for regime in PRESETS:
        table = [["scale", "cells per object", *METHODS, *(f"{m} - cam" for m in METHODS[1:])]]
        for s, cells in zip(record["scales"], record["cells_per_object"]):
            v = {r["method"]: 100 * r["seed_miou"] for r in rows if r["regime"] == regime and r["scale"] == s}
            if not v:
                continue
            table.append([f"x{s:g}", f"{cells:.0f}", *(f"{v[m]:.1f}" if m in v else "" for m in METHODS),
                          *(f"{v[m] - v['cam']:+.1f}" if m in v and "cam" in v else "" for m in METHODS[1:])])
        if len(table) == 1:
            continue
        lines.append(f"**{regime}** (seed mIoU %, first {record['n_images']} training images, seed {record['seed']}; "
                     "one scale and no flip, so the x1 row is not the suites' multi-scale read-out):\n\n"
                     + to_markdown(pd.DataFrame(table[1:], columns=table[0])))
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cells_probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="training images to read (default 300)")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0], help="input enlargements")
    ap.add_argument("--scratch-methods", nargs="*", default=list(METHODS), choices=METHODS,
                    help="methods read in the from-scratch regime (C3 and C4 train their own classifiers: "
                         "about 5 and 8 minutes each when not cached)")
    a = ap.parse_args(argv)
    if a.n < 1 or any(not 1 <= s <= 4 for s in a.scales):
        print("error: --n must be >= 1 and every scale in [1, 4]", file=sys.stderr)
        return 2
    record = probe(a.n, tuple(a.scales), methods={"scratch": tuple(a.scratch_methods), "pretrained": METHODS})
    record = {**record, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    text = json.dumps(record, indent=1)
    atomic_write_bytes(RECORDS / "probe.json", (text + "\n").encode())
    md = "<!-- written by `python -m benchmarks.cells_probe` -->\n\n" + probe_markdown(json.loads(text)) + "\n"
    atomic_write_bytes(RECORDS / "probe.md", md.encode())
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
