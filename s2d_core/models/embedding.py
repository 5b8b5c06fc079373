"""The pixel-embedding network of SPML: a backbone, a summed atrous head, unit-sphere embeddings at stride 4.

As in SPML's DeepLab variant, shrunk for 64-px images: the backbone's last stage (output stride 8)
feeds parallel 3 x 3 convolutions at several dilations whose outputs are **summed** (no
normalisation or activation), giving ``dim`` channels, then upsampled x2 to stride 4. The output
is raw; the loss and every read-out normalise it (:func:`torch.nn.functional.normalize`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import InputNormalisation, create_backbone, feature_channels
from .config import ModelConfig

__all__ = ["EmbeddingClassifier", "EmbeddingNet"]


class EmbeddingNet(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> embeddings (B, dim, H/4, W/4) (raw; normalise to compare)."""

    def __init__(self, cfg: ModelConfig = ModelConfig(init="synthetic"), dim: int = 64,
                 rates: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.cfg, self.dim = cfg, dim
        self.normalise = InputNormalisation(cfg)
        self.backbone = create_backbone(cfg)
        c = feature_channels(self.backbone)[-1]
        self.head = nn.ModuleList([nn.Conv2d(c, dim, 3, padding=r, dilation=r) for r in rates])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        f = self.backbone(self.normalise(images))[-1]
        x = sum(conv(f) for conv in self.head)
        size = (images.shape[-2] // 4, images.shape[-1] // 4)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class EmbeddingClassifier(nn.Module):
    """SPML's softmax classifier on the unit embedding: unit embeddings (B, dim, h, w) -> class logits
    (B, num_classes, h, w).

    The released head's shape (a 3 x 3 convolution to ``2 dim`` channels, batch norm, ReLU, dropout
    0.75 as in the head trained beside the embedding, a 1 x 1 convolution to the classes); it is trained on the *frozen* embedding with
    cross-entropy on the labelled pixels (:func:`s2d_core.train.spml.fit_classifier`) and only
    supplies the class scores that the random walk propagates.
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.75) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, padding=1, bias=False), nn.BatchNorm2d(2 * dim),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Conv2d(2 * dim, num_classes, 1))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.ndim != 4 or embeddings.shape[1] != self.net[0].in_channels:
            raise ValueError(f"embeddings must have shape (B, {self.net[0].in_channels}, h, w), "
                             f"got {tuple(embeddings.shape)}")
        return self.net(F.normalize(embeddings, dim=1))
