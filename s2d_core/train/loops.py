"""Training loops: seeded, resumable from a checkpoint, with a progress bar.

One generic loop, :func:`fit`, serves every network of the book: it takes a model, a data
set of dicts, and a ``loss_fn(model, batch) -> scalar``. AdamW with a one-cycle learning-rate
schedule, random horizontal flips (image and mask together), an optional random crop for data
sets whose images differ in size. On CPU a given seed reproduces a run bit for bit: shuffling
and flips draw from their own generators seeded by ``seed``; model initialisation and any
randomness inside the model (dropout) use the global torch generator, which the caller seeds
(:func:`~s2d_core.pipeline.artifacts.get_classifier` does) and which the checkpoint saves.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from ..cache import atomic_write_bytes, load_cached
from ..data import collate, fixed_size
from ..progress import progress as progress_bar
from .config import TrainConfig


class WithMasks(Dataset):
    """A data set whose ``mask`` is replaced by given labels (pseudo masks), e.g. CAM seeds.

    ``masks``: (N, H, W) uint8 array (or a list of (H_i, W_i)), 255 = ignore.
    """

    def __init__(self, base: Dataset, masks) -> None:
        if len(masks) != len(base):
            raise ValueError(f"{len(masks)} masks for a data set of {len(base)} images")
        self.base, self.masks = base, masks
        self.fixed_size = fixed_size(base)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.base[i])
        m = torch.as_tensor(np.asarray(self.masks[i]), dtype=torch.long)
        if m.shape != item["image"].shape[-2:]:
            raise ValueError(f"mask {i} has shape {tuple(m.shape)}, image has {tuple(item['image'].shape[-2:])}")
        item["mask"] = m
        return item


def _crop_collate(size: int, gen: torch.Generator):
    """Collate that pads (image 0, mask 255) and randomly crops every item to ``size``^2."""

    def fn(batch: list[dict]) -> dict:
        imgs, masks, tags = [], [], []
        for b in batch:
            img, m = b["image"], b.get("mask")
            h, w = img.shape[-2:]
            ph, pw = max(size - h, 0), max(size - w, 0)
            img = F.pad(img, (0, pw, 0, ph))
            m = F.pad(m, (0, pw, 0, ph), value=255) if m is not None else None
            y = int(torch.randint(0, img.shape[-2] - size + 1, (1,), generator=gen))
            x = int(torch.randint(0, img.shape[-1] - size + 1, (1,), generator=gen))
            imgs.append(img[:, y:y + size, x:x + size])
            if m is not None:
                masks.append(m[y:y + size, x:x + size])
            tags.append(b["tags"])
        out = {"image": torch.stack(imgs), "tags": torch.stack(tags)}
        if masks:
            out["mask"] = torch.stack(masks)
        return out

    return fn


def _state(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def fit(model: torch.nn.Module, dataset: Dataset, loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
        cfg: TrainConfig, seed: int = 0, device: str | torch.device = "cpu", desc: str = "train",
        progress: bool = True, checkpoint: str | Path | None = None, flips: bool = True,
        flip_keys: tuple[str, ...] = ("mask",)) -> dict:
    """Train ``model`` in place; returns ``{"loss": [per-epoch mean], "seconds", "images_per_second"}``.

    ``flips``: random horizontal flips of ``image`` (B, 3, H, W) and ``mask``; off for batches a
    flip would corrupt (clips with colour-coded flow, whose hue encodes the direction). Items
    then count as "images" whatever they hold (a clip window is one). ``flip_keys``: the (B, H, W)
    maps flipped with the image (label maps, region maps).

    ``checkpoint``: a file written (atomically) after every epoch; if it exists when ``fit``
    starts, training resumes from it with the same result as an uninterrupted run.
    """
    if len(dataset) < cfg.batch_size:
        raise ValueError(f"the data set has {len(dataset)} images, fewer than batch_size={cfg.batch_size}")
    if cfg.crop_size is None and not fixed_size(dataset):
        raise ValueError(f"{type(dataset).__name__}: images of a real data set differ in size, so batches need "
                         f"TrainConfig.crop_size (e.g. 320); only synthetic splits can be used whole")
    device = torch.device(device)
    model.to(device).train()
    shuffle_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    coll = collate if cfg.crop_size is None else _crop_collate(cfg.crop_size, aug_gen)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        collate_fn=coll, generator=shuffle_gen)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(loader))
    history: list[float] = []
    start, seconds = 0, 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    s = None if ckpt is None else load_cached(ckpt, lambda p: torch.load(p, map_location=device, weights_only=False),
                                              f"training checkpoint of {desc}")
    if s is not None:
        if s.get("config") != cfg.to_dict() or s.get("seed") != seed:
            raise ValueError(f"checkpoint {ckpt} was written by a run with another configuration or seed "
                             f"({s.get('config')}, seed {s.get('seed')}); delete it to start afresh")
        model.load_state_dict(s["model"]), opt.load_state_dict(s["opt"]), sched.load_state_dict(s["sched"])
        shuffle_gen.set_state(s["shuffle_gen"]), aug_gen.set_state(s["aug_gen"])
        torch.set_rng_state(s["torch_rng"])
        if torch.cuda.is_available() and s.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(s["cuda_rng"])
        start, history, seconds = s["epoch"], s["history"], s["seconds"]
        if s.get("objective") is not None and hasattr(loss_fn, "load_state_dict"):
            loss_fn.load_state_dict(s["objective"])  # a stateful objective (SPML's memory) resumes too
    bar = progress_bar(range(start, cfg.epochs), desc=desc, disable=not progress, initial=start, total=cfg.epochs,
                       leave=True, unit="epoch")
    for epoch in bar:
        t0, total, n = time.perf_counter(), 0.0, 0
        for batch in loader:
            if flips:
                flip = torch.rand(len(batch["image"]), generator=aug_gen) < 0.5
                batch["image"] = torch.where(flip[:, None, None, None], batch["image"].flip(-1), batch["image"])
                for key in flip_keys:
                    if key in batch:
                        batch[key] = torch.where(flip[:, None, None], batch[key].flip(-1), batch[key])
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate (lr={cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch["image"])
            n += len(batch["image"])
        history.append(total / n)
        seconds += time.perf_counter() - t0
        bar.set_postfix(loss=f"{history[-1]:.3f}")
        if ckpt is not None:
            atomic_write_bytes(ckpt, _state({"model": model.state_dict(), "opt": opt.state_dict(),
                                             "sched": sched.state_dict(), "shuffle_gen": shuffle_gen.get_state(),
                                             "aug_gen": aug_gen.get_state(), "epoch": epoch + 1,
                                             "torch_rng": torch.get_rng_state(),
                                             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                                             "config": cfg.to_dict(), "seed": seed,
                                             "objective": loss_fn.state_dict() if hasattr(loss_fn, "state_dict") else None,
                                             "history": history, "seconds": seconds}))
    model.eval()
    n_seen = len(loader) * cfg.batch_size * cfg.epochs
    return {"loss": history, "seconds": seconds, "images_per_second": n_seen / max(seconds, 1e-9)}


@torch.no_grad()
def predict_masks(model: torch.nn.Module, dataset: Dataset, batch_size: int = 64,
                  device: str | torch.device = "cpu", progress: bool = True, desc: str = "predict"):
    """Argmax label maps of a segmentation ``model`` over ``dataset``: (N, H, W) uint8
    (a list when image sizes differ)."""
    model.eval().to(device)
    same_size = fixed_size(dataset)
    loader = DataLoader(dataset, batch_size=batch_size if same_size else 1, collate_fn=collate)
    out = []
    for b in progress_bar(loader, desc=desc, disable=not progress):
        out.extend(model(b["image"].to(device)).argmax(1).cpu().numpy().astype(np.uint8))
    return np.stack(out) if same_size else out
