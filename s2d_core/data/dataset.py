"""The synthetic benchmark as a torch ``Dataset``.

Scenes of a split are generated once (with a progress bar), stored as one ``.npz`` in the
artifact cache keyed by the config and the generator's recipe version
(:data:`~s2d_core.data.synthetic.RECIPE_VERSION`), and served from memory.

Every data set of the package says whether its images share one size (``fixed_size``):
batches of such a set can be stacked whole, CAMs of the split held as one array; real data
(VOC) is processed one image at a time or cropped.
"""

from __future__ import annotations

import functools
import io
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset
from .. import cache
from ..progress import progress as progress_bar
from . import synthetic
from .config import SyntheticConfig
from .presets import get_preset

_FIXED = ("image", "mask", "instances", "tags", "scribbles", "emblem", "context")
_RAGGED = ("classes", "subtypes", "points", "boxes")


def generate_split(cfg: SyntheticConfig, split: str, use_cache: bool = True,
                   progress: bool = True, workers: int | None = None) -> dict[str, np.ndarray | list[np.ndarray]]:
    """All scenes of ``split`` as stacked arrays (fixed-size fields) and lists (per-object fields).

    Fixed-size fields get a leading ``N`` axis, e.g. ``image`` ``(N, H, W, 3)`` float32;
    per-object fields (``classes``, ``subtypes``, ``points``, ``boxes``) are lists of N arrays.
    Every scene has its own seed, so the result does not depend on ``workers`` (processes;
    default: up to 8 CPU cores for splits of 200 images or more, else 1).
    """
    n = cfg.split_size(split)
    path = None
    if use_cache:
        key = cache.artifact_key("synthetic-split", synthetic.RECIPE_VERSION, {"cfg": cfg.to_dict(), "split": split})
        path = cache.cache_dir() / "synthetic" / f"{cfg.name or 'custom'}-{split}-{key}.npz"
        data = cache.load_cached(path, lambda p: _read_split(p, n), f"synthetic split {cfg.name or 'custom'}/{split}")
        if data is not None:
            return data
    scenes = render_all(functools.partial(synthetic.render_scene, cfg, split), n,
                        f"generating {cfg.name or 'synthetic'}/{split}", progress, workers, parallel_from=200)
    data: dict = {k: np.stack([s[k] for s in scenes]) if n else np.zeros((0,)) for k in _FIXED}
    for k in _RAGGED:
        data[k] = [s[k] for s in scenes]
    if path is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **_pack(data))
        cache.atomic_write_bytes(path, buf.getvalue())
    return data


def render_all(render, n: int, desc: str, progress: bool = True, workers: int | None = None,
               parallel_from: int = 200, chunksize: int = 16) -> list:
    """``[render(0), ..., render(n - 1)]`` with a progress bar, in ``workers`` processes (default: up
    to 8 CPU cores once ``n >= parallel_from``, else 1). ``render`` must be picklable (a module-level
    function or a ``functools.partial`` of one) and seed each item by its index, so the result does
    not depend on ``workers``."""
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if n >= parallel_from else 1
    bar = dict(total=n, desc=desc, disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(progress_bar(pool.map(render, range(n), chunksize=chunksize), **bar))
    return [render(i) for i in progress_bar(range(n), **bar)]


def _read_split(path, n: int) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return _unpack(dict(z), n)


def _pack(data: dict) -> dict[str, np.ndarray]:
    out = {k: data[k] for k in _FIXED}
    counts = np.array([len(c) for c in data["classes"]], np.int64)
    out["counts"] = counts
    for k in _RAGGED:
        parts = data[k]
        out[k] = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
    return out


def _unpack(z: dict, n: int) -> dict:
    counts = z.pop("counts")
    if len(counts) != n:
        raise ValueError(f"the file holds {len(counts)} scenes, expected {n}")
    split_at = np.cumsum(counts)[:-1]
    for k in _RAGGED:
        z[k] = list(np.split(z[k], split_at))
    return z


class SyntheticSegmentation(Dataset):
    """One split of the synthetic benchmark.

    Parameters
    ----------
    config : a :class:`SyntheticConfig`, or the name of a preset (``"cpu"``, ``"gpu"``, ``"tiny"``).
    split : ``"train"``, ``"val"`` or ``"test"``.
    transform : optional ``f(sample) -> sample`` applied to each item.
    use_cache, progress, workers : see :func:`generate_split`.

    Each item is a dict of tensors (``H = W = config.image_size``, ``K`` objects, ``N`` classes):
    ``image`` (3, H, W) float32 in [0, 1]; ``mask`` (H, W) int64 with 0..N and 255 void;
    ``tags`` (N,) float32 multi-hot; ``points`` (K, 3) int64 rows (y, x, class);
    ``scribbles`` (H, W) int64 with class on strokes, 0 background strokes, 255 unlabelled;
    ``boxes`` (K, 5) int64 rows (x0, y0, x1, y1, class); ``instances`` (H, W) int64;
    diagnostics ``emblem`` and ``context`` (H, W) int64; and ``index`` (int).
    Batch items with :func:`collate`, since ``K`` varies.
    """

    fixed_size = True
    """All images of a synthetic split have one size (``config.image_size``)."""

    def __init__(self, config: SyntheticConfig | str = "cpu", split: str = "train",
                 transform=None, use_cache: bool = True, progress: bool = True,
                 workers: int | None = None) -> None:
        if isinstance(config, str):
            config = get_preset(config)
        if not isinstance(config, SyntheticConfig):
            raise TypeError(f"config must be a SyntheticConfig or a preset name, got {type(config).__name__}")
        self.config = config
        self.split = split
        self.transform = transform
        self.world = synthetic.make_world(config)
        self.class_names = self.world.class_names
        self.num_classes = len(self.class_names)
        self.data = generate_split(config, split, use_cache=use_cache, progress=progress, workers=workers)

    def __len__(self) -> int:
        return len(self.data["classes"])

    def identity(self) -> dict:
        """What identifies this split in cache keys and benchmark records (JSON-able)."""
        if self.transform is not None:
            raise ValueError("a SyntheticSegmentation with a transform cannot be identified for the cache; "
                             "pass use_cache=False or a data set without a transform")
        return {"name": "synthetic", "config": self.config.to_dict(), "split": self.split,
                "version": synthetic.RECIPE_VERSION}

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {self.split} split of {len(self)} images")
        d = self.data
        s = {
            "image": torch.from_numpy(np.ascontiguousarray(d["image"][i].transpose(2, 0, 1))),
            "mask": torch.from_numpy(d["mask"][i].astype(np.int64)),
            "tags": torch.from_numpy(d["tags"][i].copy()),
            "points": torch.from_numpy(d["points"][i].copy()),
            "scribbles": torch.from_numpy(d["scribbles"][i].astype(np.int64)),
            "boxes": torch.from_numpy(d["boxes"][i].copy()),
            "instances": torch.from_numpy(d["instances"][i].astype(np.int64)),
            "emblem": torch.from_numpy(d["emblem"][i].astype(np.int64)),
            "context": torch.from_numpy(d["context"][i].astype(np.int64)),
            "index": int(i) % len(self),
        }
        return self.transform(s) if self.transform is not None else s

    def subtype_map(self, i: int) -> np.ndarray:
        """Sub-type of the object at every pixel, (H, W) int64, -1 off objects (a diagnostic,
        like ``emblem``: nothing trains on it). Instance ``k`` of ``instances`` is object ``k - 1``."""
        inst = np.asarray(self.data["instances"][i]).astype(np.int64)
        sub = np.concatenate([[-1], np.asarray(self.data["subtypes"][i], dtype=np.int64)])
        return sub[inst]

    def __repr__(self) -> str:
        return (f"SyntheticSegmentation(preset={self.config.name or 'custom'!r}, split={self.split!r}, "
                f"n={len(self)}, size={self.config.image_size}, classes={self.class_names[1:]})")


def collate(batch: list[dict]) -> dict:
    """Stack fixed-size fields into ``(B, ...)`` tensors; keep ``points``/``boxes`` as lists."""
    out: dict = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if k in ("points", "boxes", "name"):
            out[k] = vals
        elif isinstance(vals[0], torch.Tensor):
            out[k] = torch.stack(vals)
        else:
            out[k] = torch.tensor(vals) if isinstance(vals[0], (int, float)) else vals
    return out
