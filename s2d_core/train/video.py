"""Training the video saliency network from scribbles (or, for the upper bound, from dense masks).

A training item is a **window** of ``length`` consecutive frames of a clip (WSVSOD trains on
clips of 4): frames, their colour-coded estimated flow, scribbles and dense masks, each with a
leading ``L`` axis (:class:`ClipWindows`). The objectives (:class:`ScribbleSaliencyLoss`,
:class:`DenseSaliencyLoss`) follow the protocol of :mod:`s2d_core.models.objective`, so the
generic :func:`~s2d_core.train.loops.fit` trains them (without flips: a mirrored flow image would
encode the wrong direction).

The scribble loss is WSVSOD's, written from its description:

.. math::  \\mathcal{L} = \\underbrace{\\frac{1}{|\\Omega_l|} \\sum_{x \\in \\Omega_l} \\mathrm{BCE}(s(x), y(x))}_{\\text{partial BCE}}
   + \\lambda_s \\underbrace{\\operatorname{mean}_x \\sum_{d \\in \\{x, y\\}} |\\partial_d s(x)|\\, e^{-\\alpha |\\partial_d I(x)|}}_{\\text{edge-aware smoothness}}
   + \\lambda_f \\underbrace{\\mathcal{L}_{\\text{fg/bg}}}_{\\text{cross-frame similarity}}

with ``s`` the predicted saliency, ``Omega_l`` the scribbled pixels (label 1 -> 1, label 2 -> 0),
``I`` the frame's grey level. The cross-frame term samples up to ``pixels`` scribbled pixels of
every frame of a window at 1/4 resolution and asks the decoder features of two pixels from
*different* frames to be similar (cosine mapped to [0, 1]) iff they carry the same label (BCE).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data.video import BACKGROUND, FOREGROUND, flow_to_rgb
from ..models.objective import Objective
from ..progress import progress as progress_bar

__all__ = ["ClipWindows", "DenseSaliencyLoss", "ScribbleSaliencyLoss", "flow_images", "predict_saliency"]


def flow_images(flows: np.ndarray) -> np.ndarray:
    """Colour-coded flow images of a stack of flows ``(..., 2, H, W)`` -> ``(..., 3, H, W)`` uint8
    (each field scaled by its own largest speed, as flow visualisers do)."""
    flows = np.asarray(flows, np.float32)
    lead = flows.shape[:-3]
    flat = flows.reshape(-1, *flows.shape[-3:])
    rgb = np.stack([flow_to_rgb(f).transpose(2, 0, 1) for f in flat])
    return np.rint(rgb * 255).astype(np.uint8).reshape(*lead, 3, *flows.shape[-2:])


class ClipWindows(Dataset):
    """Windows of ``length`` consecutive frames of every clip of a video data set.

    ``dataset``: a :class:`~s2d_core.data.video.SyntheticVideo` (items with ``frames``, ``flow``,
    ``scribbles``, ``masks``). Windows do not overlap; a clip's last window ends on its last frame.
    Item: ``image`` (L, 3, H, W) float32, ``flow_image`` (L, 3, H, W) float32 in [0, 1],
    ``scribbles`` (L, H, W) int64, ``masks`` (L, H, W) int64, ``clip`` and ``start``.
    """

    fixed_size = True

    def __init__(self, dataset: Dataset, length: int = 4) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.dataset, self.length = dataset, length
        T = dataset[0]["frames"].shape[0]
        if T < length:
            raise ValueError(f"clips have {T} frames, fewer than the window length {length}")
        starts = list(range(0, T - length + 1, length))
        if starts[-1] != T - length:
            starts.append(T - length)
        self.windows = [(c, s) for c in range(len(dataset)) for s in starts]
        self._flow_images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.windows)

    def _flow_image(self, c: int) -> np.ndarray:
        if c not in self._flow_images:
            self._flow_images[c] = flow_images(self.dataset[c]["flow"].numpy())
        return self._flow_images[c]

    def __getitem__(self, i: int) -> dict:
        c, s = self.windows[i]
        clip = self.dataset[c]
        sl = slice(s, s + self.length)
        return {"image": clip["frames"][sl], "flow_image": torch.from_numpy(self._flow_image(c)[sl].astype(np.float32) / 255),
                "scribbles": clip["scribbles"][sl], "masks": clip["masks"][sl], "clip": c, "start": s}


def _run(model: torch.nn.Module, batch: dict) -> tuple[dict, torch.Tensor]:
    """The model on every frame of a batch of windows: outputs with the (B * L) frames flattened."""
    x = batch["image"]
    flow = batch["flow_image"].flatten(0, 1) if getattr(model, "motion_encoder", None) is not None else None
    return model(x.flatten(0, 1), flow), x.flatten(0, 1)


def smoothness(saliency: torch.Tensor, images: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """Edge-aware first-order smoothness of ``saliency`` (N, 1, H, W) in [0, 1] given ``images``
    (N, 3, H, W): mean of ``|grad s| exp(-alpha |grad I|)`` over both directions."""
    grey = images.mean(1, keepdim=True)
    dsx, dsy = (saliency[..., :, 1:] - saliency[..., :, :-1]).abs(), (saliency[..., 1:, :] - saliency[..., :-1, :]).abs()
    dix, diy = (grey[..., :, 1:] - grey[..., :, :-1]).abs(), (grey[..., 1:, :] - grey[..., :-1, :]).abs()
    return (dsx * torch.exp(-alpha * dix)).mean() + (dsy * torch.exp(-alpha * diy)).mean()


def cross_frame_similarity(features: torch.Tensor, labels: torch.Tensor, pixels: int) -> torch.Tensor:
    """WSVSOD's foreground/background similarity loss over the frames of each window.

    ``features`` (B, L, D, h, w); ``labels`` (B, L, h, w) scribble labels at the features'
    resolution. Up to ``pixels`` labelled cells per frame are taken (evenly spaced in raster order,
    so a resumed training repeats an uninterrupted one); for every pair of cells in
    two different frames of a window, ``p = (1 + cos) / 2`` is pushed to 1 if both carry the
    same label and to 0 otherwise (BCE, averaged over pairs). Zero when no window has two labelled frames.
    """
    B, L = features.shape[:2]
    losses = []
    for b in range(B):
        picked = []
        for t in range(L):
            lab = labels[b, t].flatten()
            idx = torch.nonzero(lab > 0).flatten()
            if len(idx) == 0:
                continue
            if len(idx) > pixels:
                idx = idx[torch.linspace(0, len(idx) - 1, pixels).round().long()]
            f = F.normalize(features[b, t].flatten(1)[:, idx].t(), dim=1)
            picked.append((t, f, lab[idx]))
        for i in range(len(picked)):
            for j in range(i + 1, len(picked)):
                _, fa, la = picked[i]
                _, fb, lb = picked[j]
                p = ((fa @ fb.t()) + 1) / 2
                same = (la[:, None] == lb[None, :]).float()
                losses.append(F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), same))
    return torch.stack(losses).mean() if losses else features.sum() * 0.0


class ScribbleSaliencyLoss(Objective):
    """Partial BCE on scribbled pixels + edge-aware smoothness + cross-frame fg/bg similarity (module docstring)."""

    name = "video-scribbles"
    version = 1
    needs = ("scribbles",)

    def __init__(self, smooth_weight: float = 0.3, similarity_weight: float = 1.0, pixels: int = 32,
                 alpha: float = 10.0) -> None:
        self.smooth_weight, self.similarity_weight, self.pixels, self.alpha = smooth_weight, similarity_weight, pixels, alpha

    def config(self) -> dict[str, Any]:
        return {"smooth_weight": self.smooth_weight, "similarity_weight": self.similarity_weight, "pixels": self.pixels,
                "alpha": self.alpha}

    def __call__(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        out, images = _run(model, batch)
        logits = out["logits"][:, 0]
        scr = batch["scribbles"].flatten(0, 1)
        labelled = scr > 0
        if labelled.any():
            target = (scr == FOREGROUND).float()
            bce = F.binary_cross_entropy_with_logits(logits[labelled], target[labelled])
        else:
            bce = logits.sum() * 0.0
        loss = bce + self.smooth_weight * smoothness(torch.sigmoid(logits)[:, None], images, self.alpha)
        if self.similarity_weight > 0:
            feats = out["features"]
            B, L = batch["image"].shape[:2]
            # a cell is labelled with the label of the scribbled pixels in it (foreground wins)
            fg = F.adaptive_max_pool2d((scr == FOREGROUND).float()[:, None], feats.shape[-2:])[:, 0]
            bg = F.adaptive_max_pool2d((scr == BACKGROUND).float()[:, None], feats.shape[-2:])[:, 0]
            cells = torch.where(fg > 0, FOREGROUND, torch.where(bg > 0, BACKGROUND, 0)).long()
            loss = loss + self.similarity_weight * cross_frame_similarity(
                feats.view(B, L, *feats.shape[1:]), cells.view(B, L, *cells.shape[1:]), self.pixels)
        return loss


class DenseSaliencyLoss(Objective):
    """The fully supervised upper bound: BCE on every pixel's dense mask (same network)."""

    name = "video-dense"
    version = 1
    needs = ("masks",)

    def __call__(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        out, _ = _run(model, batch)
        return F.binary_cross_entropy_with_logits(out["logits"][:, 0], batch["masks"].flatten(0, 1).float())


@torch.no_grad()
def predict_saliency(model: torch.nn.Module, dataset: Dataset, device: str | torch.device = "cpu",
                     progress: bool = True) -> np.ndarray:
    """Saliency of every frame of every clip: (N, T, H, W) float32 in [0, 1]."""
    model.eval().to(device)
    out = []
    for i in progress_bar(range(len(dataset)), desc="saliency", disable=not progress):
        clip = dataset[i]
        flow = None
        if getattr(model, "motion_encoder", None) is not None:
            flow = torch.from_numpy(flow_images(clip["flow"].numpy()).astype(np.float32) / 255).to(device)
        logits = model(clip["frames"].to(device), flow)["logits"][:, 0]
        out.append(torch.sigmoid(logits).cpu().numpy())
    return np.stack(out).astype(np.float32)
