"""Weight files: the pre-trained stand-ins shipped with the package, and how to read and write them.

A real project downloads ImageNet weights and SAM checkpoints instead of training them; the
book's readers likewise should not spend 40 minutes of CPU pre-training the stand-ins before the
first chapter runs. So the networks pre-trained on the pretraining world (and the tiny SAM) for
the ``cpu`` preset ship in ``s2d_core/weights/`` as float16 safetensors files, listed in
``manifest.json`` with the artifact key of the configuration that made them and their sha256.
``python -m s2d_core.pipeline.shipping build`` rebuilds them bit for bit (same machine kind,
same torch). A file is used only when its key equals the key the current configuration asks
for, and only after its checksum matches; anything else is trained and cached as usual.

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

__all__ = ["SHIPPED_DIR", "WeightsFileError", "file_sha256", "load_weights", "save_weights", "shipped_entry",
           "shipped_manifest"]

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


def shipped_entry(key: str) -> tuple[Path, dict] | None:
    """The shipped file made for artifact ``key`` and its manifest entry, or None. Raises a
    :class:`WeightsFileError` when the file is there but its sha256 differs from the manifest's."""
    for entry in shipped_manifest().values():
        if entry.get("key") == key:
            path = SHIPPED_DIR / entry["file"]
            if not path.is_file():
                return None
            if file_sha256(path) != entry["sha256"]:
                raise WeightsFileError(f"shipped weights {str(path)!r} do not match the sha256 in manifest.json: the file "
                                       f"is corrupt or was changed; restore it (git checkout) or rebuild it with "
                                       f"`python -m s2d_core.pipeline.shipping build`")
            return path, entry
    return None
