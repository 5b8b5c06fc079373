"""How fast is C6's spectral prompt selection, per image, on a 32 x 32 CAM grid?

Input: the ``cpu`` preset's validation images, the CAMs of a method (``--method``, default the
CNN ``cam``; its classifier is loaded from the artifact cache, or trained once), and the tiny
SAM's image embedding as graph features (as in the C6 pipeline). For each image, every tagged
class's prompts are selected (graph, normalised Laplacian, eigengap, k-means, points) and the
wall time of the whole image is recorded. The baselines' selection is timed on the same input.

Reference, same graphs in the same run: scikit-learn's ``SpectralClustering`` with the
precomputed affinity and the same ``k`` (its own ARPACK eigensolver and 10 k-means restarts),
timed on the clustering step only; the ratio is printed.

Target: well under 50 ms per image on a 2-core CPU.

    python -m benchmarks.prompt_speed                      # 200 images
    python -m benchmarks.prompt_speed --out benchmarks/records/prompt_speed/cpu.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from s2d_core.cache import atomic_write_bytes

TARGET_MS = 50.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--method", default="cam")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", type=Path, help="write a Markdown report here (and .json beside it)")
    a = ap.parse_args(argv)
    if a.images < 1:
        ap.error("--images must be >= 1")

    from sklearn.cluster import SpectralClustering

    from s2d_core.arrays import to_uint8
    from s2d_core.data import get_dataset
    from s2d_core.eval.seeds import evaluate_cam_method
    from s2d_core.models.promptable import sam_predictor
    from s2d_core.pipeline import build_method, get_pipeline, get_tiny_sam
    from s2d_core.pseudo.prompted import segmenter_features
    from s2d_core.pseudo.config import PROMPT_STRATEGIES
    from s2d_core.pseudo.prompts import affinity_graph, pool, select_prompts

    torch.set_num_threads(torch.get_num_threads())
    cfg = get_pipeline(a.preset)
    train, val = get_dataset("synthetic", "train", a.preset), get_dataset("synthetic", "val", a.preset)
    method, _ = build_method(a.method, train, cfg, seed=0, device="cpu")
    n = min(a.images, len(val))
    ev = evaluate_cam_method(method, val, indices=range(n))
    threshold = ev["best_threshold"]
    sam, _ = get_tiny_sam(cfg.tiny_sam, progress=True)
    pred = sam_predictor(sam)
    feats = []
    for i in range(n):
        pred.set_image(to_uint8(val[i]["image"]))
        feats.append(segmenter_features(pred))
    c6 = cfg.c6
    log(f"{n} images, {a.method} CAMs (threshold {threshold:.2f}), graph {c6.graph_size} x {c6.graph_size}")

    def per_image(strategy: str) -> tuple[np.ndarray, list[int]]:
        rng = np.random.default_rng(0)
        times, nodes = [], []
        for i in range(n):
            cam = ev["cams"][i].astype(np.float32)
            classes = np.nonzero(ev["tags"][i])[0]
            bg = cam[classes].max(0) < c6.negative_threshold
            t0 = time.perf_counter()
            for c in classes:
                pr = select_prompts(cam[c], threshold, feats[i], c6, background=bg, rng=rng, strategy=strategy)
                nodes.append(pr.info.get("nodes", 0))
            times.append(time.perf_counter() - t0)
        return 1000 * np.array(times), nodes

    per_image("spectral")  # warm-up
    rows = {}
    for strategy in PROMPT_STRATEGIES:
        ms, nodes = per_image(strategy)
        rows[strategy] = {"mean_ms": float(ms.mean()), "median_ms": float(np.median(ms)),
                          "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max())}
        if strategy == "spectral":
            rows[strategy]["nodes_mean"] = float(np.mean(nodes))
            rows[strategy]["nodes_max"] = int(np.max(nodes))
        log(f"{strategy:9s} mean {ms.mean():6.2f} ms/image, median {np.median(ms):6.2f}, p95 {np.percentile(ms, 95):6.2f}")

    # reference: sklearn's spectral clustering on the same graphs, same k (clustering step only)
    ours, ref = [], []
    for i in range(min(n, 60)):
        cam = ev["cams"][i].astype(np.float32)
        for c in np.nonzero(ev["tags"][i])[0]:
            pr = select_prompts(cam[c], threshold, feats[i], c6)
            g = c6.graph_size
            fg = pool(cam[c], g) > threshold
            if pr.empty or fg.sum() < 8:
                continue
            W, _ = affinity_graph(fg, pool(feats[i], g), c6.knn, c6.radius, c6.feature_sigma, c6.spatial_sigma)
            k = max(pr.info["k"], 2)
            t0 = time.perf_counter()
            select_prompts(cam[c], threshold, feats[i], c6)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "graph is not fully connected"
                SpectralClustering(n_clusters=k, affinity="precomputed", random_state=0).fit(W)
            ref.append(time.perf_counter() - t0)
    ratio = float(np.sum(ref) / np.sum(ours)) if ours else float("nan")
    log(f"sklearn SpectralClustering (clustering only) vs our whole selection, {len(ours)} class maps: "
        f"{1000 * np.mean(ref):.2f} vs {1000 * np.mean(ours):.2f} ms per map, ratio (sklearn / ours) {ratio:.1f}")
    ok = rows["spectral"]["mean_ms"] < TARGET_MS
    print(f"spectral prompt selection: {rows['spectral']['mean_ms']:.1f} ms per image (target < {TARGET_MS:.0f} ms): "
          + ("OK" if ok else "MISSED"))
    if a.out:
        env = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "machine": platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
        md = [f"# C6 prompt selection speed ({n} `{a.preset}` val images, {a.method} CAMs, "
              f"{c6.graph_size} x {c6.graph_size} grid)", "",
              "| strategy | mean ms/image | median | p95 | max |", "|---|---|---|---|---|"]
        md += [f"| {s} | {r['mean_ms']:.2f} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_ms']:.2f} |"
               for s, r in rows.items()]
        md += ["", f"Spectral graphs: {rows['spectral']['nodes_mean']:.0f} nodes on average, at most "
                   f"{rows['spectral']['nodes_max']}.",
               f"Reference: scikit-learn `SpectralClustering` (precomputed affinity, same k) takes "
               f"{1000 * np.mean(ref):.2f} ms per class map for the clustering alone, ours {1000 * np.mean(ours):.2f} ms "
               f"for the whole selection: {ratio:.1f}x.", "", f"Environment: {env}"]
        atomic_write_bytes(a.out, ("\n".join(md) + "\n").encode())
        atomic_write_bytes(a.out.with_suffix(".json"), json.dumps(
            {"rows": rows, "ratio_vs_sklearn": ratio, "images": n, "env": env}, indent=1).encode())
        print("wrote", a.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
