"""Configuration of training: optimiser, schedule, batches."""

from __future__ import annotations

from dataclasses import dataclass

from ..configbase import Config, at_least, non_negative, positive

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig(Config):
    """How a network is trained (AdamW + one-cycle schedule, random horizontal flips)."""

    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-4
    crop_size: int | None = None
    """Random square crop (padded where the image is smaller), for data sets whose images differ
    in size (VOC). ``None``: images are used whole and must all have the same size."""

    rules = {"epochs": at_least(1), "batch_size": at_least(1), "lr": positive, "weight_decay": non_negative,
             "crop_size": at_least(16)}
