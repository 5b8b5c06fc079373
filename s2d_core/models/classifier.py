"""Multi-label image classifier whose weights give class activation maps.

Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016:

.. math:: s_c = \\frac{1}{hw} \\sum_{p} W_c^\\top F(p), \\qquad
          \\mathrm{CAM}_c(p) = \\mathrm{ReLU}(W_c^\\top F(p))

Global average pooling (GAP) and the linear head commute, so the class score is the mean of
the class map: the head is stored as a bias-free 1 x 1 convolution ``W`` of shape (C, D, 1, 1)
so the same weights give scores (after pooling) and maps (before it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .backbones import InputNormalisation, create_backbone, feature_channels


class Classifier(nn.Module):
    """Backbone -> GAP -> linear head, trained with the multi-label soft-margin loss.

    Parameters
    ----------
    num_classes : number of *foreground* classes ``C`` (background is not a tag).
    cfg : backbone and output stride.
    """

    def __init__(self, num_classes: int, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.normalise = InputNormalisation(cfg)
        self.backbone = create_backbone(cfg)
        self.channels = feature_channels(self.backbone)
        self.head = nn.Conv2d(self.channels[-1], num_classes, 1, bias=False)

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """All stages' feature maps for ``images`` (B, 3, H, W) in [0, 1], finest first."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        return self.backbone(self.normalise(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Last feature map ``F``: (B, D, H/s, W/s), s = output stride."""
        return self.stages(images)[-1]

    def class_maps(self, features: torch.Tensor) -> torch.Tensor:
        """``W^T F`` before ReLU and pooling: (B, C, h, w) from features (B, D, h, w)."""
        return self.head(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) (B, C)."""
        f = self.features(images)
        return self.head(f.mean((2, 3), keepdim=True)).flatten(1)

    @staticmethod
    def loss(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Multi-label soft-margin loss; ``tags`` (B, C) multi-hot."""
        if logits.shape != tags.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and tags {tuple(tags.shape)} must have the same shape")
        return F.multilabel_soft_margin_loss(logits, tags.float())
