"""Weight files: the pre-trained stand-ins of the ``cpu`` preset, and how to read and write them.

A real project downloads ImageNet weights and SAM checkpoints instead of training them. Here
``s2d_core/weights/manifest.json`` lists the ``cpu`` preset's stand-ins with the artifact key of
the configuration that makes each and the sha256 of its reference build:

* the **tiny SAM** (2.9 MB) is in git (``in_git``): it would cost a reader 21 minutes of CPU;
* the **pre-trained ResNet-10** (9.9 MB, float16) is *generated*, not stored in git: the first
  chapter that needs it pre-trains it (13 minutes, once; cached like every artifact), or
  ``python -m s2d_core.pipeline.shipping build`` writes it here. Either way the digest of its
  weights (``weights_sha256``) is compared with the reference's: on the machine kind and torch
  build that made the reference, the rebuild holds bit for bit the same weights (measured: a
  rebuild from an empty cache matched).

A file here is used only when its key equals the key the current configuration asks for, and
only after its checksum matches.

Values are stored as float16 (half the size; the networks are fine-tuned afterwards, and a
float16 rounding of a weight is far below what one step of fine-tuning changes). Integer
buffers (BatchNorm's step counter) keep their type.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = ["SHIPPED_DIR", "WeightsFileError", "file_sha256", "load_weights", "manifest_entry", "matches_entry",
           "save_weights", "shipped_entry", "shipped_manifest", "state_dict_sha256", "weights_sha256"]

#: Folder of the shipped weight files and their ``manifest.json``.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"


class WeightsFileError(RuntimeError):
    """A weights file is missing, corrupt, or does not fit the network it is loaded into."""


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(state: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None) -> None:
    """Write a state dict as safetensors, floating-point tensors as float16; ``metadata`` (JSON-able)
    is stored in the file's header under ``"s2d"``."""
    out = {k: (v.detach().cpu().to(torch.float16) if v.is_floating_point() else v.detach().cpu()).contiguous()
           for k, v in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(out, str(tmp), metadata={"s2d": json.dumps(metadata or {}, sort_keys=True)})
    tmp.replace(path)


def state_dict_sha256(model: torch.nn.Module | dict) -> str:
    """sha256 of a state dict: every entry in sorted key order, with its name, dtype, shape and bytes.
    Equal digests mean bit-for-bit equal networks."""
    sd = model.state_dict() if isinstance(model, torch.nn.Module) else model
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """:func:`state_dict_sha256` of the tensors stored in a weights file (as stored, e.g. float16):
    equal for two files holding the same weights whatever their headers say."""
    try:
        return state_dict_sha256(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - any failure to parse means a bad file
        raise WeightsFileError(f"weights file {str(path)!r} cannot be read ({type(e).__name__}: {str(e)[:120]})") from e


def matches_entry(path: str | Path, entry: dict) -> bool:
    """Whether the file is the manifest ``entry``'s: the file's sha256 for a file kept in git, the
    weights' digest (:func:`weights_sha256`) for a generated one."""
    if "weights_sha256" in entry:
        return weights_sha256(path) == entry["weights_sha256"]
    return file_sha256(path) == entry["sha256"]


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from :func:`save_weights` (float16 values back to float32)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"weights file {str(path)!r} does not exist")
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - any failure to parse means a bad file
        raise WeightsFileError(f"weights file {str(path)!r} cannot be read ({type(e).__name__}: {str(e)[:120]})") from e
    # copies, never views of the memory-mapped file (a file replaced later must not change them)
    return {k: v.float() if v.is_floating_point() else v.clone() for k, v in state.items()}


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
    """``module.load_state_dict(state)`` with an error that names the file and the mismatch."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsFileError(f"weights file {str(path)!r} does not fit {what}: {str(e).splitlines()[0][:300]}") from e


def shipped_manifest() -> dict:
    """``manifest.json`` of the shipped weights: ``{name: {"file", "key", "sha256", "config", ...}}``."""
    path = SHIPPED_DIR / "manifest.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def manifest_entry(key: str) -> dict | None:
    """The manifest's entry for artifact ``key`` (its reference sha256, configuration, ...), or None."""
    return next((e for e in shipped_manifest().values() if e.get("key") == key), None)


def shipped_entry(key: str) -> tuple[Path, dict] | None:
    """The file in ``SHIPPED_DIR`` made for artifact ``key`` and its manifest entry, or None (no
    entry, or a generated file not built yet). Raises a :class:`WeightsFileError` when the file
    is there but its sha256 differs from the manifest's."""
    for entry in shipped_manifest().values():
        if entry.get("key") == key:
            path = SHIPPED_DIR / entry["file"]
            if not path.is_file():
                return None
            if not matches_entry(path, entry):
                raise WeightsFileError(f"shipped weights {str(path)!r} do not match the sha256 in manifest.json: the file "
                                       f"is corrupt or was changed; restore it (git checkout) or rebuild it with "
                                       f"`python -m s2d_core.pipeline.shipping build`")
            return path, entry
    return None
