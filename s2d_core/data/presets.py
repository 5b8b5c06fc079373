"""Named synthetic worlds: the one place where the data presets' values are defined.

The values were fixed before any method was tuned; methods must not change them (a method
that wants another setting is evaluated on a named preset of its own, added here).

* ``cpu``  -- the book's and CI's default: 64 x 64 images, runs on 2 CPU cores in minutes.
* ``gpu``  -- the same world at 256 x 256 with 5x more training images, for a lent GPU.
* ``tiny`` -- a handful of images for tests and smoke runs; same world as ``cpu``.
* ``cpu-scratch`` -- the ``cpu`` world itself (its pipeline preset trains every network from scratch).

Video worlds (:class:`VideoWorldConfig`, :mod:`s2d_core.data.video`):

* ``video_cpu`` -- 150 training and 40 test clips of 12 frames at 64 px, for 2 CPU cores.
* ``video_gpu`` -- the world at 128 px with 4x more clips of 16 frames, for a lent GPU. Speeds and
  stroke widths are in pixels, so at 128 px objects move half as far relative to their size and
  strokes are relatively thinner: a related world, not the same one scaled.
* ``video_tiny`` -- a few short clips for tests.

The pipeline presets (models, training, methods) are in :mod:`s2d_core.pipeline.presets`;
:mod:`s2d_core.presets` offers both.
"""

from __future__ import annotations

from .config import SyntheticConfig, VideoWorldConfig

__all__ = ["PRESETS", "VIDEO_PRESETS", "get_preset", "get_video_preset"]

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


VIDEO_PRESETS: dict[str, VideoWorldConfig] = {
    "video_cpu": VideoWorldConfig(name="video_cpu"),
    "video_gpu": VideoWorldConfig(image_size=128, n_frames=16, n_train=600, n_test=160, name="video_gpu"),
    "video_tiny": VideoWorldConfig(n_frames=4, n_train=6, n_test=3, name="video_tiny"),
}


def get_video_preset(name: str) -> VideoWorldConfig:
    """The :class:`VideoWorldConfig` of a named video preset."""
    if name not in VIDEO_PRESETS:
        raise ValueError(f"unknown video preset {name!r}: expected one of {sorted(VIDEO_PRESETS)}")
    return VIDEO_PRESETS[name]
