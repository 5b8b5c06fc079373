"""Golden outputs of every kind of cached artifact, on the tiny preset.

The artifact cache keys on recipe versions, not on source code (``s2d_core.cache``). That is
safe only if a change that alters what a recipe produces also bumps its version. This module
computes, for each kind of artifact, a **fingerprint** of its tiny-preset output (a few dozen
numbers: a network's outputs on fixed images, a split's images and labels) and the sha256 of the
exact bytes, and ``tests/test_recipes.py`` compares them with ``tests/golden/recipes.json``:

* same versions, same environment (torch build and CPU as recorded) -> the sha256 must match:
  every bit;
* same versions, another environment, fingerprint within rounding (1e-3) -> pass (CPUs whose
  vector units differ round sums differently; the difference is reported, not required);
* same versions, fingerprint changed -> fail: the output changed without a version bump;
* versions changed -> fail until the golden file is re-recorded:
  ``python tests/golden_recipes.py --update`` (after checking that the change was meant).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent / "golden" / "recipes.json"


def _sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _fp(x) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(x, np.float64).ravel()]


def compute() -> dict:
    """Every artifact kind's versions, fingerprint and sha256 (trains tiny networks: about 15 s).

    On one thread: how a reduction is split between threads changes the last bits of a sum,
    and training carries those bits forward.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _compute()
    finally:
        torch.set_num_threads(threads)


def _compute() -> dict:
    from s2d_core.cam.base import METHODS, compute_cams
    from s2d_core.data import get_dataset, pretraining, shapes, synthetic
    from s2d_core.pipeline.pretrained import pretrained_weights
    from s2d_core.models.weights import load_weights
    from s2d_core.pipeline import RECIPES, build_method, get_classifier, get_segmenter, get_tiny_sam, get_pipeline
    from s2d_core.pipeline.artifacts import state_dict_sha256

    out: dict[str, dict] = {}
    cfg = get_pipeline("tiny")
    train = get_dataset("synthetic", "train", "tiny", progress=False)
    val = get_dataset("synthetic", "val", "tiny", progress=False)
    images = torch.stack([val[i]["image"] for i in range(4)])
    tags = torch.stack([val[i]["tags"] for i in range(4)])

    d = train.data
    out["synthetic-split"] = {
        "versions": {"synthetic-split": synthetic.RECIPE_VERSION},
        "fingerprint": _fp(d["image"].reshape(len(d["image"]), -1, 3).mean(1)),
        "sha256": _sha(d["image"], d["mask"], d["instances"], d["tags"], d["scribbles"], d["emblem"], d["context"],
                       *d["classes"], *d["points"], *d["boxes"])}
    world = shapes.object_world(12, 64, split="train", use_cache=False, progress=False)
    out["object-world"] = {
        "versions": {"object-world": shapes.RECIPE_VERSION},
        "fingerprint": _fp(world["image"].reshape(12, -1, 3).mean(1)) + _fp(world["instances"].reshape(12, -1).mean(1)),
        "sha256": _sha(world["image"], world["instances"], world["parts"])}

    out["video-world"] = video_world_entry()
    out["video-saliency"] = video_saliency_entry()
    out["spml-embedding"] = spml_embedding_entry()

    # the pretraining world and the backbones pre-trained on it (the tiny preset's small recipe)
    pw = pretraining.pretraining_world(cfg.pretraining.world, "train", use_cache=False, progress=False)
    out["pretraining-world"] = {
        "versions": {"pretraining-world": pretraining.RECIPE_VERSION},
        "fingerprint": _fp(pw["image"][:12].reshape(12, -1, 3).mean(1)) + _fp(pw["tags"][:12].sum(1)),
        "sha256": _sha(pw["image"], pw["tags"], pw["instances"])}
    init_versions = {"pretraining-world": RECIPES["pretraining-world"], "pretrained-backbone": RECIPES["pretrained-backbone"]}
    for arch, mcfg in (("cnn", cfg.classifier), ("vit", cfg.vit)):
        path, _ = pretrained_weights(mcfg, cfg.pretraining, progress=False)
        state = load_weights(path)
        first = sorted(state)[:6]
        out[f"pretrained-backbone/{arch}"] = {"versions": init_versions,
                                              "fingerprint": _fp([state[k].float().mean() for k in first]),
                                              "sha256": state_dict_sha256(state)}

    # every registered method: its network (CNN or ViT, plain or with the method's objective) and its maps
    seen_networks = set()
    for name in METHODS.names():
        spec = METHODS.get(name)
        method, info = build_method(name, train, cfg, seed=0, progress=False)
        kind = "vit-classifier" if spec.classifier == "vit" else "classifier"
        objective = spec.objective(cfg) if spec.objective else None
        net_versions = {kind: RECIPES[kind], **({f"objective:{objective.name}": objective.version} if objective else {}),
                        **init_versions}
        net_name = f"{kind}/{objective.name if objective else 'tags'}"
        if net_name not in seen_networks:
            seen_networks.add(net_name)
            with torch.no_grad():
                logits = method.model(images)
            out[net_name] = {"versions": net_versions, "fingerprint": _fp(logits),
                             "sha256": state_dict_sha256(method.model)}
        maps = compute_cams(method, val, progress=False)  # the cached path: batches of 64, float16
        out[f"cams/{name}"] = {
            "versions": {**net_versions, "cams": RECIPES["cams"], f"maps:{method.name}": method.version},
            "fingerprint": _fp(maps[:4].astype(np.float64).mean((2, 3))) + _fp(maps[:4, :, ::16, ::16]),
            "sha256": _sha(maps)}

    seg, _ = get_segmenter(train, None, cfg.segmenter, cfg.segmenter_train, seed=0, progress=False,
                           pretraining=cfg.pretraining)
    with torch.no_grad():
        logits = seg(images[:2])
    out["segmenter"] = {"versions": {"segmenter": RECIPES["segmenter"], **init_versions},
                        "fingerprint": _fp(logits.mean((2, 3))) + _fp(logits[:, :, ::16, ::16]),
                        "sha256": state_dict_sha256(seg)}

    sam, _ = get_tiny_sam(cfg.tiny_sam, seed=0, progress=False, use_shipped=False)
    with torch.no_grad():
        x = sam.preprocess(torch.from_numpy(world["image"][:2]).permute(0, 3, 1, 2).float())
        emb = sam.image_encoder(x)
    out["tiny-sam"] = {"versions": {"tiny-sam": RECIPES["tiny-sam"], "object-world": shapes.RECIPE_VERSION},
                       "fingerprint": _fp(emb.mean((2, 3))), "sha256": state_dict_sha256(sam)}
    return out


def environment() -> dict:
    """What decides the last bits of a computation here: the torch build and the CPU."""
    from s2d_core.pipeline.run import cpu_model

    return {"torch": torch.__version__, "cpu": cpu_model()}


def compare(now: dict, golden: dict, rtol: float = 1e-3, atol: float = 1e-3,
            env: dict | None = None) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` of ``now`` against the ``golden`` record (see the module docstring)."""
    failures, notes = [], []
    same_env = env is not None and env == golden.get("environment")
    for kind, g in golden["artifacts"].items():
        if kind not in now:
            failures.append(f"{kind}: recorded in {GOLDEN.name} but no longer produced; re-record the golden file")
    for kind, n in now.items():
        g = golden["artifacts"].get(kind)
        if g is None:
            failures.append(f"{kind}: a new kind of artifact; record it with `python tests/golden_recipes.py --update`")
        elif g["versions"] != n["versions"]:
            failures.append(f"{kind}: recipe versions are now {n['versions']}, the golden file has {g['versions']}; "
                            f"if the change of output is meant, re-record with `python tests/golden_recipes.py --update`")
        elif len(g["fingerprint"]) != len(n["fingerprint"]) or not np.allclose(n["fingerprint"], g["fingerprint"],
                                                                               rtol=rtol, atol=atol):
            diff = np.abs(np.subtract(n["fingerprint"], g["fingerprint"])).max() \
                if len(g["fingerprint"]) == len(n["fingerprint"]) else "shape"
            failures.append(f"{kind}: its tiny-preset output changed (largest difference {diff}) but its recipe "
                            f"versions {n['versions']} did not: bump the version of what changed (s2d_core.pipeline."
                            f"artifacts.RECIPES, an objective's or a map method's `version`, data.synthetic/shapes."
                            f"RECIPE_VERSION) so cached artifacts are rebuilt, then re-record the golden file")
        elif g["sha256"] != n["sha256"]:
            if same_env:
                failures.append(f"{kind}: its output changed in the last bits on the environment the golden file was "
                                f"recorded on ({env}), but its recipe versions {n['versions']} did not: bump the "
                                f"version of what changed, then re-record the golden file")
            else:
                notes.append(f"{kind}: same output to rounding, not bit for bit (another CPU or torch build)")
    return failures, notes


def video_world_entry() -> dict:
    """The synthetic video world: two clips of the ``video_tiny`` preset with their estimated flow."""
    from s2d_core.data import video
    from s2d_core.data.presets import get_video_preset

    cfg = get_video_preset("video_tiny")
    clips = [video._render_with_flow(cfg, "train", i) for i in range(2)]
    return {"versions": {"video-world": video.RECIPE_VERSION},
            "fingerprint": _fp([c["frames"].mean() for c in clips]) + _fp([c["flow"].astype("float32").mean() for c in clips]),
            "sha256": _sha(*(c[k] for c in clips for k in ("frames", "masks", "scribbles", "true_flow", "valid")))}


def video_saliency_entry() -> dict:
    """The video saliency network trained from scribbles on the ``video_tiny`` world (one epoch, from scratch)."""
    from s2d_core.data.video import SyntheticVideo
    from s2d_core.models.config import ModelConfig, VideoModelConfig
    from s2d_core.pipeline import RECIPES, get_video_saliency, state_dict_sha256
    from s2d_core.train import TrainConfig
    from s2d_core.train.video import ClipWindows, ScribbleSaliencyLoss

    ds = SyntheticVideo("video_tiny", "train", progress=False)
    net, _ = get_video_saliency(ds, VideoModelConfig(encoder=ModelConfig(init="scratch")), TrainConfig(epochs=1, batch_size=2),
                                seed=0, window=2, progress=False)
    w = ClipWindows(ds, 2)[0]
    with torch.no_grad():
        logits = net(w["image"], w["flow_image"])["logits"]
    loss = ScribbleSaliencyLoss()
    return {"versions": {"video-saliency": RECIPES["video-saliency"], f"objective:{loss.name}": loss.version,
                         "video-world": RECIPES["video-world"]},
            "fingerprint": _fp(logits.mean((1, 2, 3))) + _fp(logits[:, 0, ::16, ::16]), "sha256": state_dict_sha256(net)}


def spml_embedding_entry() -> dict:
    """SPML's embedding network trained from scribbles on the tiny world (one epoch, from scratch)."""
    from s2d_core.data import get_dataset
    from s2d_core.models.config import ModelConfig
    from s2d_core.pipeline import RECIPES, get_pipeline, state_dict_sha256
    from s2d_core.pipeline.spml import SPMLConfig, WeakLabels, get_spml_embedding
    from s2d_core.train import TrainConfig

    train = get_dataset("synthetic", "train", "tiny", progress=False)
    cfg = SPMLConfig(embedding=ModelConfig(init="scratch"), dim=16, train=TrainConfig(epochs=1, batch_size=8), grid=2)
    data = WeakLabels(train, "scribbles", cfg)
    net, _ = get_spml_embedding(data, cfg, get_pipeline("tiny"), seed=0, progress=False)
    with torch.no_grad():
        emb = net(torch.stack([train[i]["image"] for i in range(2)]))
    return {"versions": {"spml-embedding": RECIPES["spml-embedding"], "objective:spml": 1,
                         "synthetic-split": RECIPES["synthetic-split"]},
            "fingerprint": _fp(emb.mean((2, 3))[:, :4]) + _fp(emb[:, 0, ::4, ::4]), "sha256": state_dict_sha256(net)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help=f"write {GOLDEN}")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["S2D_CACHE_DIR"] = tmp
        now = compute()
    if args.update:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"environment": environment(), "artifacts": now}, indent=1) + "\n")
        print(f"wrote {GOLDEN} ({len(now)} artifact kinds)")
        return 0
    failures, notes = compare(now, json.loads(GOLDEN.read_text()), env=environment())
    print("\n".join(failures + notes) or "all artifact kinds match their golden outputs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
