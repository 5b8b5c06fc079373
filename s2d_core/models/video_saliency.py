"""The per-frame saliency network of the video chapters: an image encoder, optionally a motion
encoder on the colour-coded optical flow fused by gates, and a light two-level decoder.

In the spirit of WSVSOD (Zhao et al., CVPR 2021) -- one encoder per modality, appearance-motion
fusion at every level -- shrunk for 64-px frames on a CPU. The fusion of level ``l`` is a
modality gate:

.. math::  F_l = A_l + \\sigma\\big(W_l * [A_l; M_l]\\big) \\odot M_l

(``A``: appearance features, ``M``: motion features, ``W``: a 3 x 3 convolution), so the network
learns where motion is worth listening to. Frames are processed independently (no temporal module);
the losses tie frames together (:mod:`s2d_core.train.video`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import InputNormalisation, create_backbone, feature_channels
from .config import VideoModelConfig

__all__ = ["SaliencyNet"]


def _conv_bn(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SaliencyNet(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] (+ flow images (B, 3, H, W) with ``motion="stream"``) ->
    ``{"logits": (B, 1, H, W), "features": (B, decoder_dim, H/4, W/4)}``."""

    def __init__(self, cfg: VideoModelConfig = VideoModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalise = InputNormalisation(cfg.encoder)
        self.image_encoder = create_backbone(cfg.encoder)
        ch = feature_channels(self.image_encoder)
        red = list(self.image_encoder.feature_info.reduction())
        self.levels = (red.index(4) if 4 in red else 0, len(ch) - 1)
        self.motion_encoder = create_backbone(cfg.encoder) if cfg.motion == "stream" else None
        if self.motion_encoder is not None:
            self.gates = nn.ModuleList([nn.Conv2d(2 * ch[i], ch[i], 3, padding=1) for i in self.levels])
        d = cfg.decoder_dim
        self.lateral = nn.ModuleList([_conv_bn(ch[i], d) for i in self.levels])
        self.fuse = _conv_bn(d, d, 3)
        self.head = nn.Conv2d(d, 1, 1)

    def forward(self, frames: torch.Tensor, flow_images: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must have shape (B, 3, H, W), got {tuple(frames.shape)}")
        feats = self.image_encoder(self.normalise(frames))
        picked = [feats[i] for i in self.levels]
        if self.motion_encoder is not None:
            if flow_images is None or flow_images.shape != frames.shape:
                raise ValueError(f"motion='stream' needs flow images of the frames' shape {tuple(frames.shape)}, got "
                                 f"{None if flow_images is None else tuple(flow_images.shape)}")
            mfeats = self.motion_encoder(self.normalise(flow_images))
            picked = [a + torch.sigmoid(g(torch.cat([a, mfeats[i]], 1))) * mfeats[i]
                      for a, g, i in zip(picked, self.gates, self.levels)]
        fine, coarse = (lat(f) for lat, f in zip(self.lateral, picked))
        x = self.fuse(fine + F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False))
        logits = F.interpolate(self.head(x), size=frames.shape[-2:], mode="bilinear", align_corners=False)
        return {"logits": logits, "features": x}
