"""Configuration of training: optimiser, schedule, batches."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configbase import Config, at_least, non_negative, one_of, positive
from ..data.config import PretrainWorldConfig

__all__ = ["PretrainConfig", "TrainConfig"]


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
    pretrained_epochs: int | None = None
    """Epochs when the network starts from pre-trained weights (``init`` other than ``"scratch"``);
    ``None``: ``epochs``. Pre-trained networks need fewer; the ``cpu`` preset's were chosen on
    held-out training images (``python -m benchmarks.pretraining schedule``)."""

    rules = {"epochs": at_least(1), "batch_size": at_least(1), "lr": positive, "weight_decay": non_negative,
             "crop_size": at_least(16), "pretrained_epochs": at_least(1)}

    def for_init(self, init: str) -> "TrainConfig":
        """The schedule for a network that starts from ``init``: ``pretrained_epochs`` replace
        ``epochs`` unless it starts from scratch (and the field is then left out)."""
        if self.pretrained_epochs is None:
            return self
        epochs = self.epochs if init == "scratch" else self.pretrained_epochs
        return self.replace(epochs=epochs, pretrained_epochs=None)


@dataclass(frozen=True)
class PretrainConfig(Config):
    """Supervised multi-label pre-training on the pretraining world (tags only, no masks).

    The schedules were set from a throughput probe (2 CPU cores, 64 px: ``resnet10t`` at output
    stride 32 about 220 images/s, the ``cpu`` ViT about 390 images/s) for about 10 minutes per
    backbone, and frozen before any method ran on the result. The loss is the tag cross-entropy
    (:func:`~s2d_core.models.objective.tag_cross_entropy`): with the soft margin, a first
    10-minute run of the CNN learnt nothing (test mAP at chance).
    """

    world: PretrainWorldConfig = field(default_factory=PretrainWorldConfig)
    cnn: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=8, batch_size=32, lr=2e-3, weight_decay=1e-4))
    """Schedule of the CNN backbones (a :class:`~s2d_core.models.Classifier` on the world's tags)."""
    cnn_output_stride: int = 32
    """Output stride of the CNN while it is pre-trained: 32, as ImageNet networks are trained (twice
    the throughput of stride 8); the weights are the same at any stride, and the benchmark's
    networks run them dilated at their own (8 for ``cpu``), as DeepLab runs ImageNet weights."""
    vit: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=14, batch_size=32, lr=1e-3, weight_decay=0.05))
    """Schedule of the ViTs (a :class:`~s2d_core.models.vit.ViTPretrainer`: class and patch tokens)."""
    seed: int = 0

    rules = {"seed": non_negative, "cnn_output_stride": one_of(8, 16, 32)}
