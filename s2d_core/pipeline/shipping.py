"""The shipped foundation artifacts: rebuild them, check them.

Real users download ImageNet weights and SAM checkpoints rather than train them; so do the
book's readers. For the ``cpu`` preset, ``s2d_core/weights/`` holds the CNN and ViT backbones
pre-trained on the pretraining world (float16 safetensors) and the tiny SAM (float32, the form
in which it is trained and cached), listed in ``manifest.json`` with the artifact key of the
configuration that made each and its sha256. The pipeline uses a file only when its key is
the key the current configuration asks for (:func:`~s2d_core.models.weights.shipped_entry`).

    python -m s2d_core.pipeline.shipping build     # rebuild (reuses the artifact cache; on an empty one, ~45 min)
    python -m s2d_core.pipeline.shipping check     # do the files match the cpu preset?

On the same machine kind and torch version a rebuild from an empty cache gives the same bytes
(every recipe is seeded; ``tests/test_recipes.py`` checks it on the tiny preset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from ..models.weights import SHIPPED_DIR, file_sha256, shipped_manifest
from .artifacts import get_tiny_sam, tiny_sam_key
from .presets import get_pipeline
from .pretrained import pretrained_weights, short_name, weights_key

__all__ = ["build", "check", "main"]


def _shipped_networks():
    p = get_pipeline("cpu")
    # the ViT is not shipped: its pre-training learnt nothing in its budget (the cpu ViT starts from scratch)
    return p, {"cnn": p.classifier}


def build(out_dir: Path = SHIPPED_DIR, progress: bool = True) -> dict:
    """(Re)build the shipped files for the ``cpu`` preset: both backbones (float16) and the tiny SAM
    (float32, the form it is trained and cached in), with ``manifest.json``. Reuses the artifact
    cache; on an empty cache this pre-trains everything (about 45 minutes on 2 cores)."""
    p, nets = _shipped_networks()
    manifest = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, mcfg in nets.items():
        key = weights_key(mcfg, p.pretraining)
        src, info = pretrained_weights(mcfg, p.pretraining, progress=progress)
        dst = out_dir / f"{name}-{short_name(mcfg)}.safetensors"
        if src.resolve() != dst.resolve():
            dst.write_bytes(src.read_bytes())
        manifest[name] = {"file": dst.name, "key": key, "sha256": file_sha256(dst), "kind": "pretrained-backbone",
                          "config": mcfg.to_dict(), "pretraining": p.pretraining.to_dict(),
                          "info": {k: v for k, v in info.items() if k not in ("source", "key")}}
    sam, info = get_tiny_sam(p.tiny_sam, progress=progress, use_shipped=False)
    dst = out_dir / "tiny-sam.safetensors"
    buf = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    save_file(buf, str(dst), metadata={"s2d": json.dumps({"key": tiny_sam_key(p.tiny_sam, 0)})})
    manifest["tiny_sam"] = {"file": dst.name, "key": tiny_sam_key(p.tiny_sam, 0), "sha256": file_sha256(dst),
                            "kind": "tiny-sam", "config": p.tiny_sam.to_dict(),
                            "info": {k: v for k, v in info.items() if k not in ("from_cache", "key", "source")}}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def check(out_dir: Path = SHIPPED_DIR) -> list[str]:
    """Problems with the shipped files: missing, checksum, or a key the ``cpu`` preset no longer asks for."""
    p, nets = _shipped_networks()
    want = {n: weights_key(c, p.pretraining) for n, c in nets.items()}
    want["tiny_sam"] = tiny_sam_key(p.tiny_sam, 0)
    manifest = shipped_manifest() if out_dir == SHIPPED_DIR else json.loads((out_dir / "manifest.json").read_text())
    problems = []
    for name, key in want.items():
        e = manifest.get(name)
        if e is None:
            problems.append(f"{name}: not in manifest.json")
            continue
        if e["key"] != key:
            problems.append(f"{name}: shipped for key {e['key']}, the cpu preset asks for {key} (rebuild)")
        f = out_dir / e["file"]
        if not f.is_file() or file_sha256(f) != e["sha256"]:
            problems.append(f"{name}: {f.name} missing or its sha256 differs from manifest.json")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m s2d_core.pipeline.shipping", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("build", "check"))
    args = ap.parse_args(argv)
    if args.command == "build":
        for name, e in build().items():
            print(f"{name:9s} {e['file']:32s} {(SHIPPED_DIR / e['file']).stat().st_size / 1e6:6.2f} MB  sha256 {e['sha256'][:16]}")
        return 0
    problems = check()
    print("\n".join(problems) if problems else "shipped weights match the cpu preset")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
