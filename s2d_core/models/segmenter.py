"""Segmentation network: the classifier's backbone family + a light DeepLabv3+-style decoder.

Chen et al., "Encoder-Decoder with Atrous Separable Convolution" (DeepLabv3+), ECCV 2018,
shrunk for small images: an ASPP on the last stage (branches of 3 x 3 convolutions at
``cfg.aspp_rates`` plus image pooling), fused with the stride-4 stage, upsampled to the input.
Trained with cross-entropy that ignores label 255, it is the same network whether the labels
are pseudo masks or ground truth (the fully supervised upper bound).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .backbones import InputNormalisation, create_backbone, feature_channels


def _conv_bn(cin: int, cout: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: (B, D, h, w) -> (B, width, h, w)."""

    def __init__(self, cin: int, width: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn(cin, width, 1)] + [_conv_bn(cin, width, 3, r) for r in rates])
        self.pool = _conv_bn(cin, width, 1)
        self.project = _conv_bn(width * (len(rates) + 2), width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        g = self.pool(x.mean((2, 3), keepdim=True))
        outs.append(g.expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, 1))


class Segmenter(nn.Module):
    """Images (B, 3, H, W) -> logits (B, K, H, W) over ``K = num_classes`` (background included)."""

    def __init__(self, num_classes: int, cfg: ModelConfig = ModelConfig(), width: int = 128) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must count background too (>= 2), got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.normalise = InputNormalisation(cfg)
        self.backbone = create_backbone(cfg)
        ch = feature_channels(self.backbone)
        reductions = list(self.backbone.feature_info.reduction())
        # the stage at stride 4 (or the finest one) carries the boundaries
        self.low_index = reductions.index(4) if 4 in reductions else 0
        self.aspp = ASPP(ch[-1], width, tuple(int(r) for r in cfg.aspp_rates))
        self.low = _conv_bn(ch[self.low_index], 32, 1)
        self.fuse = nn.Sequential(_conv_bn(width + 32, width, 3), _conv_bn(width, width, 3))
        self.classify = nn.Conv2d(width, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        feats = self.backbone(self.normalise(images))
        x = self.aspp(feats[-1])
        low = self.low(feats[self.low_index])
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.classify(self.fuse(torch.cat([x, low], 1)))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
        """Pixel cross-entropy; ``labels`` (B, H, W) int64 with ``ignore_index`` skipped."""
        if labels.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"labels must have shape {(logits.shape[0], *logits.shape[2:])}, got {tuple(labels.shape)}")
        return F.cross_entropy(logits, labels.long(), ignore_index=ignore_index)
