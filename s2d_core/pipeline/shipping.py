"""The foundation artifacts of the ``cpu`` preset: build them, check them against the manifest.

Real users download ImageNet weights and SAM checkpoints rather than train them. For the
``cpu`` preset, ``s2d_core/weights/manifest.json`` lists the ResNet-10 pre-trained on the
pretraining world (float16 safetensors) and the tiny SAM (float32, the form in which it is
trained and cached), each with the artifact key of the configuration that makes it and the
sha256 of the reference build. The tiny SAM's file is in git; the ResNet-10's (9.9 MB) is
generated -- by the first chapter that needs it, or here.

    python -m s2d_core.pipeline.shipping build            # write both files here; compare with the manifest
    python -m s2d_core.pipeline.shipping build --record   # ... and record them as the new reference
    python -m s2d_core.pipeline.shipping check            # do the files and keys match the cpu preset?

On the same machine kind and torch build a rebuild from an empty cache gives the same bytes
(every recipe is seeded); ``build`` says whether it did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from ..models.weights import SHIPPED_DIR, file_sha256, matches_entry, shipped_manifest, weights_sha256
from .artifacts import get_tiny_sam, tiny_sam_key
from .presets import get_pipeline
from .pretrained import pretrained_weights, short_name, weights_key

__all__ = ["build", "check", "main"]


def _shipped_networks():
    p = get_pipeline("cpu")
    # the ViT is not shipped: its pre-training learnt nothing in its budget (the cpu ViT starts from scratch)
    return p, {"cnn": p.classifier}


def build(out_dir: Path = SHIPPED_DIR, progress: bool = True, record: bool = False) -> dict:
    """Write the ``cpu`` preset's files into ``out_dir`` (reusing the artifact cache; from an empty
    cache this pre-trains the ResNet-10, about 13 minutes, and the tiny SAM, about 21). Each entry
    of the returned manifest says whether the file ``matches_reference`` (the sha256 recorded in
    ``manifest.json``); with ``record`` the manifest is rewritten with the files just built."""
    p, nets = _shipped_networks()
    old = shipped_manifest() if out_dir == SHIPPED_DIR else {}
    manifest = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, mcfg in nets.items():
        key = weights_key(mcfg, p.pretraining)
        src, info = pretrained_weights(mcfg, p.pretraining, progress=progress)
        dst = out_dir / f"{name}-{short_name(mcfg)}.safetensors"
        if src.resolve() != dst.resolve():
            dst.write_bytes(src.read_bytes())
        manifest[name] = {"file": dst.name, "key": key, "weights_sha256": weights_sha256(dst), "kind": "pretrained-backbone",
                          "in_git": False, "config": mcfg.to_dict(), "pretraining": p.pretraining.to_dict(),
                          "info": {k: v for k, v in info.items() if k not in ("source", "key", "matches_reference")}}
    sam, info = get_tiny_sam(p.tiny_sam, progress=progress, use_shipped=False)
    dst = out_dir / "tiny-sam.safetensors"
    buf = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    save_file(buf, str(dst), metadata={"s2d": json.dumps({"key": tiny_sam_key(p.tiny_sam, 0)})})
    manifest["tiny_sam"] = {"file": dst.name, "key": tiny_sam_key(p.tiny_sam, 0), "sha256": file_sha256(dst),
                            "kind": "tiny-sam", "in_git": True, "config": p.tiny_sam.to_dict(),
                            "info": {k: v for k, v in info.items() if k not in ("from_cache", "key", "source")}}
    if record or not old:
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for name, e in manifest.items():
        ref = old.get(name)
        e["matches_reference"] = None if ref is None or ref["key"] != e["key"] else matches_entry(out_dir / e["file"], ref)
    return manifest


def check(out_dir: Path = SHIPPED_DIR) -> list[str]:
    """Problems with the manifest and the files: an entry missing, a key the ``cpu`` preset no
    longer asks for, a file in git missing, or a file whose sha256 differs. A generated file that
    has not been built yet is not a problem."""
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
            problems.append(f"{name}: made for key {e['key']}, the cpu preset asks for {key} (rebuild with --record)")
        f = out_dir / e["file"]
        if not f.is_file():
            if e.get("in_git"):
                problems.append(f"{name}: {f.name} is missing (it is in git: git checkout it)")
        elif not matches_entry(f, e):
            problems.append(f"{name}: {f.name} does not match its sha256 in manifest.json")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m s2d_core.pipeline.shipping", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("build", "check"))
    ap.add_argument("--record", action="store_true", help="build: record the files built as the new reference")
    args = ap.parse_args(argv)
    if args.command == "build":
        differ = False
        for name, e in build(record=args.record).items():
            same = {True: "matches the reference bit for bit", False: "DIFFERS from the reference",
                    None: "no reference for this key"}[e["matches_reference"]]
            differ |= e["matches_reference"] is False and not args.record
            print(f"{name:9s} {e['file']:28s} {(SHIPPED_DIR / e['file']).stat().st_size / 1e6:6.2f} MB  "
                  f"sha256 {e.get('sha256', e.get('weights_sha256'))[:16]}  {same}")
        return 1 if differ else 0
    problems = check()
    print("\n".join(problems) if problems else "the manifest and the files match the cpu preset")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
