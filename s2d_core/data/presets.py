"""Named synthetic worlds: the one place where the data presets' values are defined.

The values were fixed before any method was tuned; methods must not change them (a method
that wants another setting is evaluated on a named preset of its own, added here).

* ``cpu``  -- the book's and CI's default: 64 x 64 images, runs on 2 CPU cores in minutes.
* ``gpu``  -- the same world at 256 x 256 with 5x more training images, for a lent GPU.
* ``tiny`` -- a handful of images for tests and smoke runs; same world as ``cpu``.
* ``cpu-scratch`` -- the ``cpu`` world itself (its pipeline preset trains every network from scratch).

The pipeline presets (models, training, methods) are in :mod:`s2d_core.pipeline.presets`;
:mod:`s2d_core.presets` offers both.
"""

from __future__ import annotations

from .config import SyntheticConfig

__all__ = ["PRESETS", "get_preset"]

PRESETS: dict[str, SyntheticConfig] = {
    "cpu": SyntheticConfig(name="cpu"),
    "gpu": SyntheticConfig(image_size=256, n_train=10000, n_val=1449, name="gpu"),
    "tiny": SyntheticConfig(n_train=32, n_val=16, name="tiny"),
}
PRESETS["cpu-scratch"] = PRESETS["cpu"]  # the cpu world under the networks trained from scratch (pipeline preset)


def get_preset(name: str) -> SyntheticConfig:
    """The :class:`SyntheticConfig` of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: expected one of {sorted(PRESETS)}")
    return PRESETS[name]
