"""Artifact cache: expensive results (generated splits, trained networks, CAMs) stored on disk.

A later chapter or benchmark that asks for the same thing loads it instead of recomputing.
An artifact's key hashes what defines it and nothing else::

    key = artifact_key("classifier", version=1, spec={"data": ..., "model": ..., "train": ..., "seed": 0})

* ``spec``: the data's identity, the configuration and the seed (JSON-able);
* ``version``: the **recipe version** of that kind of artifact, an explicit integer kept next to
  the code that produces it. Editing that code in a way that changes its output means bumping
  the version (a golden test per artifact kind fails when the output changes and the version
  does not); renaming, moving or commenting code changes nothing and retrains nothing.

Reading a cached file that turns out to be corrupt (a truncated download, a disk that filled
up) warns with the file's path, moves it aside as ``*.corrupt`` and lets the caller rebuild it.
The cache lives in ``$S2D_CACHE_DIR`` if set, else ``~/.cache/s2d``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar("T")

__all__ = ["CacheWarning", "artifact_key", "atomic_write_bytes", "cache_dir", "load_cached"]


class CacheWarning(UserWarning):
    """A cached file could not be read and will be rebuilt."""


def cache_dir() -> Path:
    """Root folder of the artifact cache (created on demand)."""
    root = Path(os.environ.get("S2D_CACHE_DIR", Path.home() / ".cache" / "s2d")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def artifact_key(kind: str, version: int, spec: Mapping[str, Any]) -> str:
    """A 16-hex-digit key of an artifact: its kind, recipe version and JSON-able ``spec``."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"recipe version of {kind!r} must be a positive integer, got {version!r}")
    blob = json.dumps({"kind": kind, "version": version, "spec": spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cached(path: Path, loader: Callable[[Path], T], what: str) -> T | None:
    """``loader(path)`` if the file exists and reads; ``None`` when it is missing or corrupt.

    A file that exists but cannot be read is moved aside (``<name>.corrupt``) with a
    :class:`CacheWarning` naming it and ``what`` it held, so the caller rebuilds it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return loader(path)
    except MemoryError:  # a valid file too large for this machine is not corrupt
        raise
    except Exception as e:  # noqa: BLE001 - any other failure to read means: rebuild it
        if type(e).__name__ == "OutOfMemoryError":  # torch's (CUDA) out-of-memory error, likewise
            raise
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        warnings.warn(f"the cached {what} {str(path)!r} could not be read ({type(e).__name__}: {str(e)[:120]}); "
                      f"moved it to {bad.name} and rebuilding it", CacheWarning, stacklevel=2)
        return None
