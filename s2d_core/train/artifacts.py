"""Trained models and CAMs as cached artifacts, keyed by their full configuration.

Any chapter or benchmark that asks for "the cpu-preset classifier, seed 0" gets the same
network: the first caller trains it (with a per-epoch checkpoint, so an interrupted run
resumes), every later caller loads it from ``cache_dir()/models``. Keys hash the data set's
identity, the model and training configurations, the seed, and the source code of the
modules that define the network and the loop, so editing them retrains (even a comment:
the cache errs on the side of retraining). The device is not part of the key: a network
trained on a GPU is loaded on the CPU and vice versa, equal up to floating-point order.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import cache
from ..cam import cam as cam_module
from ..config import ModelConfig, TrainConfig
from ..models import backbones, classifier as classifier_module, segmenter as segmenter_module
from ..models.classifier import Classifier
from ..models.segmenter import Segmenter
from . import loops
from .loops import WithMasks, fit


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (a GPU if there is one), checked."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but this machine has no CUDA GPU "
                         f"(torch {torch.__version__}); use device='cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was asked for but MPS is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}")
    return dev


def dataset_id(dataset: Dataset) -> dict:
    """A JSON-able identity of a data set split (used in cache keys and benchmark records)."""
    if getattr(dataset, "transform", None) is not None:
        raise ValueError(f"{type(dataset).__name__} has a transform, which cannot be part of a cache key; "
                         f"pass use_cache=False or a data set without a transform")
    if hasattr(dataset, "config") and hasattr(dataset.config, "to_dict"):
        return {"name": "synthetic", "config": dataset.config.to_dict(), "split": dataset.split}
    root = getattr(dataset, "root", None)
    split = getattr(dataset, "split", None)
    if root is not None:
        mask_dir = getattr(dataset, "mask_dir", None)
        return {"name": type(dataset).__name__, "root": str(Path(root).resolve()), "split": split,
                "mask_dir": None if mask_dir is None else str(Path(mask_dir).resolve()), "n": len(dataset)}
    raise ValueError(f"cannot identify data set {type(dataset).__name__} for caching: it needs a "
                     f"'config' (synthetic) or 'root' and 'split' attribute")


def _num_fg(dataset: Dataset) -> int:
    n = getattr(dataset, "num_classes", None)
    if n is None:
        raise ValueError(f"data set {type(dataset).__name__} has no num_classes attribute")
    return int(n) - 1


def _model_path(kind: str, key: str) -> Path:
    return cache.cache_dir() / "models" / f"{kind}-{key}.pt"


def _save(path: Path, model: torch.nn.Module, info: dict) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "info": info}, buf)
    cache.atomic_write_bytes(path, buf.getvalue())


def _load(path: Path, model: torch.nn.Module, device: torch.device) -> dict:
    s = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(s["model"])
    return s["info"]


def _train_or_load(kind: str, key: str, build, train_set, loss_fn, train_cfg, seed, device, progress, use_cache):
    path = _model_path(kind, key)
    torch.manual_seed(seed)
    model = build().to(device)
    if use_cache and path.exists():
        info = _load(path, model, device)
        info = {**info, "from_cache": True}
    else:
        ckpt = path.with_suffix(".ckpt") if use_cache else None
        info = fit(model, train_set, loss_fn, train_cfg, seed=seed, device=device, desc=kind,
                   progress=progress, checkpoint=ckpt)
        info = {**info, "key": key, "seed": seed}
        if use_cache:
            _save(path, model, info)
            ckpt.unlink(missing_ok=True)
        info = {**info, "from_cache": False}
    model.eval()
    model.s2d_key = key  # lets get_cams cache CAMs of this exact network
    return model, info


def _keyed_loss(spec: dict, modules: list, objective, default_loss, kind: str):
    """Cache key, loss and artifact name of a classifier: the plain ``default_loss``, or a
    densifier's ``objective`` whose name, config and source modules join the key."""
    if objective is None:
        return cache.config_key(spec, modules=modules), default_loss, kind
    spec = {**spec, "objective": {"name": objective.name, "config": objective.config}}
    return cache.config_key(spec, modules=[*modules, *objective.modules]), objective, f"{kind}-{objective.name}"


def get_classifier(train_set: Dataset, model_cfg: ModelConfig = ModelConfig(), train_cfg: TrainConfig = TrainConfig(),
                   seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
                   use_cache: bool = True, objective=None) -> tuple[Classifier, dict]:
    """The CAM classifier trained on ``train_set``'s tags: ``(model in eval mode, info)``.

    ``objective``: None trains with the multi-label soft-margin loss alone; a densifier that
    adds a loss passes an object with ``name``, ``config`` (JSON-able dict), ``modules``
    (whose source defines the loss: part of the cache key) and ``__call__(model, batch) ->
    loss``. ``info``: ``loss`` per epoch, ``seconds`` of training, ``images_per_second``,
    ``from_cache``.
    """
    device = resolve_device(device)
    seed = int(seed)
    spec = {"stage": "classifier", "data": dataset_id(train_set), "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(), "seed": seed}
    key, loss_fn, kind = _keyed_loss(spec, [backbones, classifier_module, loops], objective,
                                     lambda m, b: m.loss(m(b["image"]), b["tags"]), "classifier")
    return _train_or_load(kind, key, lambda: Classifier(_num_fg(train_set), model_cfg), train_set,
                          loss_fn, train_cfg, seed, device, progress, use_cache)


def get_vit_classifier(train_set: Dataset, vit_cfg=None, train_cfg: TrainConfig = TrainConfig(epochs=20, lr=1e-3, weight_decay=0.05),
                       seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
                       use_cache: bool = True, objective=None):
    """The ViT classifier of the ViT track (:class:`~s2d_core.models.vit.ViTClassifier`), trained on
    ``train_set``'s tags with both heads' soft-margin losses: ``(model in eval mode, info)``.

    ``objective`` as in :func:`get_classifier` (C5 passes its contrastive objective). Cached
    by data, configuration, seed and the source of the ViT module and the loop.
    """
    from ..config import ViTConfig
    from ..models import vit as vit_module

    vit_cfg = ViTConfig() if vit_cfg is None else vit_cfg
    device = resolve_device(device)
    seed = int(seed)
    spec = {"stage": "vit-classifier", "data": dataset_id(train_set), "model": vit_cfg.to_dict(),
            "train": train_cfg.to_dict(), "seed": seed}
    key, loss_fn, kind = _keyed_loss(spec, [backbones, vit_module, loops], objective,
                                     lambda m, b: m.tag_loss(m.tokens(b["image"]), b["tags"]), "vit")
    return _train_or_load(kind, key, lambda: vit_module.ViTClassifier(_num_fg(train_set), vit_cfg), train_set,
                          loss_fn, train_cfg, seed, device, progress, use_cache)


def masks_digest(masks) -> str:
    """A short hash of a set of label maps (identifies a pseudo-mask set in cache keys)."""
    h = hashlib.sha256()
    for m in masks:
        m = np.ascontiguousarray(np.asarray(m, dtype=np.uint8))
        h.update(str(m.shape).encode())
        h.update(m.tobytes())
    return h.hexdigest()[:16]


def get_segmenter(train_set: Dataset, masks=None, model_cfg: ModelConfig = ModelConfig(),
                  train_cfg: TrainConfig = TrainConfig(), seed: int = 0, device: str | torch.device = "cpu",
                  progress: bool = True, use_cache: bool = True, desc: str | None = None) -> tuple[Segmenter, dict]:
    """The segmentation network trained on ``masks`` ((N, H, W) uint8, 255 = ignore), or on
    the ground-truth masks of ``train_set`` when ``masks`` is None (the upper bound)."""
    device = resolve_device(device)
    seed = int(seed)
    if train_cfg.batch_size < 2:
        raise ValueError(f"segmenter batch_size must be >= 2 (the ASPP's image-pooling branch normalises "
                         f"over the batch), got {train_cfg.batch_size}")
    labels = "ground truth" if masks is None else masks_digest(masks)
    data = train_set if masks is None else WithMasks(train_set, masks)
    key = cache.config_key({"stage": "segmenter", "data": dataset_id(train_set), "labels": labels,
                            "model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "seed": seed},
                           modules=[backbones, segmenter_module, loops])
    kind = desc or ("segmenter-fully-supervised" if masks is None else "segmenter")
    return _train_or_load(kind, key, lambda: Segmenter(_num_fg(train_set) + 1, model_cfg), data,
                          lambda m, b: m.loss(m(b["image"]), b["mask"]), train_cfg, seed, device, progress, use_cache)


def get_cams(method, dataset: Dataset, device: str | torch.device = "cpu", progress: bool = True,
             use_cache: bool = True) -> np.ndarray | list[np.ndarray]:
    """CAMs of ``dataset`` from a CAM ``method(images, tags)``: (N, C, H, W) float16 in [0, 1].

    Cached when ``method`` has a ``cache_key`` (a :class:`~s2d_core.cam.CAM` over a classifier
    from :func:`get_classifier` has one) and the images share one size (synthetic data).
    The key names the classifier's training configuration, so do not reuse it for a model
    changed in place after :func:`get_classifier` returned it (pass ``use_cache=False``).
    """
    from ..cam.cam import compute_cams

    device = resolve_device(device)
    method_key = getattr(method, "cache_key", None)
    if not use_cache or method_key is None or not hasattr(dataset, "config"):
        return compute_cams(method, dataset, device=device, progress=progress)
    key = cache.config_key({"stage": "cams", "method": method_key, "data": dataset_id(dataset)}, modules=[cam_module])
    path = cache.cache_dir() / "cams" / f"cams-{key}.npy"
    if path.exists():
        return np.load(path)
    cams = compute_cams(method, dataset, device=device, progress=progress)
    # straight to a temporary file, then renamed: no second in-memory copy (the gpu preset's
    # CAMs are several GB) and no half-written cache entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, cams)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return cams


def get_tiny_sam(cfg=None, seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
                 use_cache: bool = True):
    """The tiny SAM pre-trained class-agnostically on the object world: ``(sam in eval mode, info)``.

    Cached by configuration, seed and the source of the object world, the model and its
    training; ``info`` has the ``loss_curve``, ``seconds`` and ``from_cache``.
    """
    from ..config import TinySAMConfig
    from ..data import shapes
    from ..models import tiny_sam
    from . import promptable

    cfg = TinySAMConfig() if cfg is None else cfg
    device = resolve_device(device)
    key = cache.config_key({"stage": "tiny-sam", "model": cfg.to_dict(), "seed": int(seed)},
                           modules=[shapes, tiny_sam, promptable])
    path = _model_path("tiny-sam", key)
    if use_cache and path.exists():
        sam = tiny_sam.build_tiny_sam(cfg).to(device)
        info = {**_load(path, sam, device), "from_cache": True}
    else:
        world = shapes.object_world(cfg.n_scenes, cfg.img_size, seed=0, split="train", progress=progress)
        empty = np.nonzero(world["instances"].reshape(len(world["instances"]), -1).max(1) == 0)[0]
        if len(empty):  # every scene must offer an object to ask about
            raise ValueError(f"object world ({cfg.n_scenes} scenes at {cfg.img_size} px): scenes {empty[:10].tolist()} "
                             f"have no object; use a larger img_size or another n_scenes")
        del world
        sam, info = promptable.pretrain_tiny_sam(cfg, seed=int(seed), device=device, progress=progress)
        info = {**info, "key": key, "seed": int(seed)}
        if use_cache:
            _save(path, sam, info)
        info = {**info, "from_cache": False}
    return sam.eval(), info


def describe(info: dict) -> str:
    """One line about a trained artifact, for notebooks."""
    src = "loaded from cache" if info.get("from_cache") else "trained now"
    return (f"{src}: {len(info['loss'])} epochs, final loss {info['loss'][-1]:.3f}, "
            f"{info['seconds'] / 60:.1f} min of training at {info['images_per_second']:.0f} images/s")


__all__ = ["dataset_id", "describe", "get_cams", "get_classifier", "get_segmenter", "get_tiny_sam", "get_vit_classifier", "masks_digest", "resolve_device"]
