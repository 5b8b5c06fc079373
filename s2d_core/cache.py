"""Artifact cache: expensive results stored on disk under a key derived from their config.

A later chapter that asks for the same thing (the same generated split, later the same
trained model) loads it instead of recomputing. Keys hash the full configuration *and*
the source code that produced the artifact, so editing the generator invalidates its cache.

The cache lives in ``$S2D_CACHE_DIR`` if set, else ``~/.cache/s2d``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable


def cache_dir() -> Path:
    """Root folder of the artifact cache (created on demand)."""
    root = Path(os.environ.get("S2D_CACHE_DIR", Path.home() / ".cache" / "s2d")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def config_key(config: Any, modules: Iterable[ModuleType] = ()) -> str:
    """A 16-hex-digit key of a JSON-able config and the source of ``modules``."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for m in modules:
        h.update(inspect.getsource(m).encode())
    return h.hexdigest()[:16]


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
