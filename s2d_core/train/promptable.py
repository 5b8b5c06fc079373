"""Class-agnostic pre-training of the tiny SAM on the object world, SAM's recipe at toy scale.

Each step takes ``batch_size`` object-world scenes, picks one object per scene and one prompt
mode for the whole batch (so prompt tensors share a shape):

* ``point`` (half the steps): one positive point drawn uniformly inside the object, SAM's
  ambiguous prompt. If it lands on the object's decal, the target is the decal or the whole
  object with equal odds; the loss takes the best of the three multimask outputs (SAM's
  "minimum over masks"), so the three outputs learn part and whole.
* ``points``: that point plus 1-3 more, each a positive inside the object or a negative outside
  it; the target is the object and the loss is on the single-mask output (token 0).
* ``box``: the object's box, each side jittered by up to 10 % of its size; single-mask output.

Mask loss: binary cross-entropy + Dice on the decoder's logits upsampled to the input size (SAM uses focal +
Dice; BCE converges faster from scratch). The IoU head regresses the true IoU of each output
(MSE). SAM's later interactive rounds (points sampled from the error, previous mask as input)
are left out. Images enter as 8-bit pixel values, exactly as ``SamPredictor`` hands them to the
model at inference.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from ..data.shapes import object_world
from ..models.config import TinySAMConfig
from ..models.tiny_sam import build_tiny_sam, decode
from ..progress import progress as progress_bar

#: Recipe version of the pre-trained tiny SAM (this loop, the object world, the model):
#: 2 = images enter as uint8 pixel values, as SamPredictor gives them at inference
#: (version 1 fed un-quantised float images).
RECIPE_VERSION = 2


def _sample(rng: np.random.Generator, inst: np.ndarray, parts: np.ndarray, mode: str):
    """One (target (H, W) bool, points (N, 2) xy, labels (N,), box (4,) or None) for a scene."""
    ids = [k for k in np.unique(inst) if k > 0]
    k = ids[int(rng.integers(len(ids)))]
    obj = inst == k
    ys, xs = np.nonzero(obj)
    j = int(rng.integers(len(ys)))
    x, y = float(xs[j]), float(ys[j])
    target = obj
    if mode == "point":
        if parts[ys[j], xs[j]] == k and rng.random() < 0.5:
            target = parts == k
        return target, np.array([[x, y]]), np.array([1]), None
    if mode == "points":
        pts, lab = [[x, y]], [1]
        out_y, out_x = np.nonzero(~obj)
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5 or len(out_y) == 0:
                i = int(rng.integers(len(ys)))
                pts.append([xs[i], ys[i]]), lab.append(1)
            else:
                i = int(rng.integers(len(out_y)))
                pts.append([out_x[i], out_y[i]]), lab.append(0)
        return target, np.array(pts, float), np.array(lab), None
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    jit = 0.1 * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) * rng.uniform(-1, 1, 4)
    h, w = inst.shape
    box = np.clip(np.array([x0, y0, x1, y1], float) + jit, 0, [w - 1, h - 1, w - 1, h - 1])
    return target, None, None, box


def prompt_batch(rng: np.random.Generator, inst: np.ndarray, parts: np.ndarray, mode: str):
    """Targets ``(B, H, W)`` and prompts for scenes ``inst``/``parts`` ``(B, H, W)``: ``points``
    ``(B, N, 2)`` (x, y) and ``labels`` ``(B, N)`` padded with label -1 (SAM's "not a point"),
    or ``boxes`` ``(B, 4)``."""
    samples = [_sample(rng, i, p, mode) for i, p in zip(inst, parts)]
    targets = np.stack([s[0] for s in samples])
    if mode == "box":
        return targets, None, None, np.stack([s[3] for s in samples])
    n = max(len(s[1]) for s in samples)
    pts = np.zeros((len(samples), n, 2))
    lab = -np.ones((len(samples), n), np.int64)
    for b, s in enumerate(samples):
        pts[b, :len(s[1])], lab[b, :len(s[2])] = s[1], s[2]
    return targets, pts, lab, None


def mask_losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + Dice per mask: ``logits`` ``(B, M, H, W)``, ``target`` ``(B, H, W)`` -> ``(B, M)``."""
    t = target[:, None].float().expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean((2, 3))
    p = logits.sigmoid()
    dice = 1 - (2 * (p * t).sum((2, 3)) + 1) / (p.sum((2, 3)) + t.sum((2, 3)) + 1)
    return bce + dice


def _iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    m, t = logits > 0, target[:, None].expand_as(logits)
    return (m & t).sum((2, 3)).float() / ((m | t).sum((2, 3)).float().clamp(min=1))


def pretrain_tiny_sam(cfg: TinySAMConfig = TinySAMConfig(), seed: int = 0, device: str | torch.device = "cpu",
                      progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Build and pre-train a tiny SAM; returns ``(sam, info)`` with the loss curve and time."""
    world = object_world(cfg.n_scenes, cfg.img_size, seed=0, split="train", progress=progress)
    empty = np.nonzero(world["instances"].reshape(len(world["instances"]), -1).max(1) == 0)[0]
    if len(empty):  # every scene must offer an object to ask about
        raise ValueError(f"object world ({cfg.n_scenes} scenes at {cfg.img_size} px): scenes {empty[:10].tolist()} "
                         f"have no object; use a larger img_size or another n_scenes")
    images = torch.from_numpy(world["image"]).permute(0, 3, 1, 2).contiguous()  # (n, 3, H, W) uint8
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sam = build_tiny_sam(cfg).to(device).train()
    opt = torch.optim.AdamW(sam.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    modes = ("point", "point", "points", "box")
    curve, t0 = [], time.perf_counter()
    bar = progress_bar(range(cfg.steps), desc="tiny SAM pre-training", disable=not progress, leave=True, unit="step")
    for step in bar:
        idx = rng.integers(0, len(images), cfg.batch_size)
        mode = modes[step % len(modes)]
        target, pts, lab, boxes = prompt_batch(rng, world["instances"][idx], world["parts"][idx], mode)
        x = sam.preprocess(images[idx].to(device).float())
        emb = sam.image_encoder(x)
        points = None if pts is None else (torch.as_tensor(pts, dtype=torch.float32, device=device),
                                           torch.as_tensor(lab, device=device))
        box_t = None if boxes is None else torch.as_tensor(boxes, dtype=torch.float32, device=device)
        sparse, dense = sam.prompt_encoder(points=points, boxes=box_t, masks=None)
        logits, iou_pred = decode(sam, emb, sparse, dense)
        # compared at input resolution, as SamPredictor returns them (postprocess_masks upsamples)
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        tgt = torch.as_tensor(target, device=device)
        sel = slice(1, 4) if mode == "point" else slice(0, 1)
        losses = mask_losses(logits[:, sel], tgt)
        mask_loss = losses.min(dim=1).values.mean()
        iou_loss = F.mse_loss(iou_pred[:, sel], _iou(logits[:, sel].detach(), tgt))
        loss = mask_loss + iou_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        opt.step()
        sched.step()
        curve.append(mask_loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(curve[-50:]):.3f}")
    sam.eval()
    return sam, {"loss_curve": curve, "seconds": time.perf_counter() - t0, "steps": cfg.steps}
