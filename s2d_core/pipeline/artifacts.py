"""Trained networks and CAMs as cached artifacts: trained on first use, loaded afterwards.

Any chapter or benchmark that asks for "the cpu-preset classifier, seed 0" gets the same
network: the first caller trains it (with a per-epoch checkpoint, so an interrupted run
resumes), every later caller loads it from ``cache_dir()/models``. A key hashes the data set's
identity, the configuration, the seed, the training objective's name, version and settings, and
the **recipe version** of the artifact kind (:data:`RECIPES`) -- not the source code: editing,
moving or commenting code retrains nothing, and a change that alters what a recipe produces
bumps its version (the golden test of each kind, ``tests/test_recipes.py``, fails otherwise).
The device is not part of the key: a network trained on a GPU loads on the CPU and vice versa,
equal up to floating-point order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset

from .. import cache
from ..cam.base import MapMethod, compute_cams
from ..data import fixed_size, pretraining, shapes, synthetic, video
from ..devices import resolve_device
from ..models.classifier import Classifier
from ..models.config import ModelConfig, TinySAMConfig, VideoModelConfig, ViTConfig
from ..models.objective import MaskLoss, Objective, TagLoss, ViTTagLoss
from ..models.segmenter import Segmenter
from ..models.tiny_sam import build_tiny_sam
from ..models.video_saliency import SaliencyNet
from ..models.vit import ViTClassifier
from ..models.weights import load_into, shipped_entry, state_dict_sha256
from ..train import pretrain, promptable
from ..train.config import PretrainConfig, TrainConfig
from ..train.loops import WithMasks, fit
from ..train.video import ClipWindows, ScribbleSaliencyLoss
from .config import PipelineConfig
from .pretrained import with_init

__all__ = ["RECIPES", "dataset_id", "describe", "get_cams", "get_classifier", "get_segmenter", "get_tiny_sam",
           "get_video_saliency", "masks_digest", "state_dict_sha256", "tiny_sam_key", "train_or_load"]

RECIPES: dict[str, int] = {
    "synthetic-split": synthetic.RECIPE_VERSION,  # data/synthetic.py, textures.py, annotations.py
    "object-world": shapes.RECIPE_VERSION,        # data/shapes.py
    "classifier": 1,       # models/classifier.py + backbones.py + train/loops.py (+ the objective's own version)
    "vit-classifier": 1,   # models/vit.py + train/loops.py (+ the objective's own version)
    "segmenter": 1,        # models/segmenter.py + backbones.py + train/loops.py
    "cams": 1,             # cam/base.py compute_cams (+ each map method's own version)
    "tiny-sam": promptable.RECIPE_VERSION,  # models/tiny_sam.py + train/promptable.py (+ the object world's)
    "pretraining-world": pretraining.RECIPE_VERSION,   # data/pretraining.py
    "pretrained-backbone": pretrain.RECIPE_VERSION,    # train/pretrain.py + models (+ the world's version)
    "video-world": video.RECIPE_VERSION,               # data/video.py (clips, scribbles, true and estimated flow)
    "video-saliency": 1,   # models/video_saliency.py + train/video.py + train/loops.py (+ the objective's own version)
    "spml-embedding": 1,   # models/embedding.py + train/spml.py + data/labels.py + train/loops.py
}
"""Recipe version of every kind of cached artifact. Bump one when a change alters what it produces."""


def dataset_id(dataset: Dataset) -> dict:
    """A JSON-able identity of a data set split (used in cache keys and benchmark records)."""
    identity = getattr(dataset, "identity", None)
    if identity is None:
        raise ValueError(f"cannot identify data set {type(dataset).__name__} for caching: it needs an identity() "
                         f"method (SyntheticSegmentation and VOCSegmentation have one); pass use_cache=False")
    return identity()


def _num_fg(dataset: Dataset) -> int:
    n = getattr(dataset, "num_classes", None)
    if n is None:
        raise ValueError(f"data set {type(dataset).__name__} has no num_classes attribute")
    return int(n) - 1


def _model_path(name: str, key: str) -> Path:
    return cache.cache_dir() / "models" / f"{name}-{key}.pt"


def _save(path: Path, model: torch.nn.Module, info: dict) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "info": info}, buf)
    cache.atomic_write_bytes(path, buf.getvalue())


def _check_labels(dataset: Dataset, objective: Objective) -> None:
    if len(dataset) == 0:
        raise ValueError(f"cannot train on an empty data set ({type(dataset).__name__})")
    objective.check_batch(dataset[0])


def train_or_load(name: str, key: str, build: Callable[[], torch.nn.Module], data: Dataset, objective: Objective,
                   train_cfg: TrainConfig, seed: int, device: torch.device, progress: bool,
                   use_cache: bool, flips: bool = True, flip_keys: tuple[str, ...] = ("mask",)) -> tuple[torch.nn.Module, dict]:
    """A network trained with :func:`~s2d_core.train.loops.fit` (a per-epoch checkpoint, so an
    interrupted run resumes) or loaded from ``cache_dir()/models/<name>-<key>.pt``; in eval mode."""
    path = _model_path(name, key)
    _check_labels(data, objective)  # before the seed: reading an item must not move the generator

    def fresh() -> torch.nn.Module:  # the global generator makes the initialisation; seeded per network
        torch.manual_seed(seed)
        return build().to(device)

    model = fresh()
    info = None
    if use_cache and path.is_file():
        def load(p: Path) -> dict:
            s = torch.load(p, map_location=device, weights_only=False)
            model.load_state_dict(s["model"])
            return s["info"]
        info = cache.load_cached(path, load, f"{name} network")
        if info is None:  # a corrupt file may have half-loaded the network: start again from the seed
            model = fresh()
    if info is not None:
        info = {**info, "from_cache": True}
    else:
        ckpt = path.with_suffix(".ckpt") if use_cache else None
        info = fit(model, data, objective, train_cfg, seed=seed, device=device, desc=name, progress=progress,
                   checkpoint=ckpt, flips=flips, flip_keys=flip_keys)
        info = {**info, "key": key, "seed": seed}
        if use_cache:
            _save(path, model, info)
            ckpt.unlink(missing_ok=True)
        info = {**info, "from_cache": False}
    model.eval()
    return model, info


def get_classifier(train_set: Dataset, model_cfg: ModelConfig | ViTConfig = ModelConfig(),
                   train_cfg: TrainConfig | None = None, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = True, use_cache: bool = True, objective: Objective | None = None,
                   pretraining: PretrainConfig | None = None) -> tuple[torch.nn.Module, dict]:
    """A classifier trained on ``train_set``'s tags: ``(model in eval mode, info)``.

    ``model_cfg``: a :class:`ModelConfig` gives the CNN :class:`~s2d_core.models.Classifier`, a
    :class:`ViTConfig` the :class:`~s2d_core.models.vit.ViTClassifier`. ``objective``: the loss
    (:class:`~s2d_core.models.objective.Objective`); None is the plain tag loss of that network
    (:class:`TagLoss` / :class:`ViTTagLoss`). ``train_cfg``: None takes the default pipeline's
    (``PipelineConfig().classifier_train``, or ``.vit_train`` for a ViT). ``pretraining``: the recipe
    of the backbone when ``model_cfg.init == "synthetic"`` (None: ``PipelineConfig().pretraining``;
    :func:`~s2d_core.pipeline.pretrained.pretrained_weights`). ``info``: ``loss`` per epoch, ``seconds`` of
    training, ``images_per_second``, ``from_cache`` and ``key`` (the artifact's cache key, which
    map methods pass on so that their maps can be cached).
    """
    device = resolve_device(device)
    seed = int(seed)
    vit = isinstance(model_cfg, ViTConfig)
    if not vit and not isinstance(model_cfg, ModelConfig):
        raise TypeError(f"model_cfg must be a ModelConfig (CNN) or a ViTConfig, got {type(model_cfg).__name__}")
    objective = objective if objective is not None else (ViTTagLoss() if vit else TagLoss())
    if train_cfg is None:
        train_cfg = PipelineConfig().vit_train if vit else PipelineConfig().classifier_train
    kind = "vit-classifier" if vit else "classifier"
    pretraining = PipelineConfig().pretraining if pretraining is None else pretraining
    train_cfg = train_cfg.for_init(model_cfg.init)
    spec = {"data": dataset_id(train_set), "model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "seed": seed,
            "objective": objective.identity()}
    model_cfg, spec["init"] = with_init(model_cfg, pretraining, device=device, progress=progress, use_cache=use_cache)
    key = cache.artifact_key(kind, RECIPES[kind], spec)
    name = f"{'vit' if vit else 'classifier'}-{objective.name}"
    build = (lambda: ViTClassifier(_num_fg(train_set), model_cfg)) if vit else \
        (lambda: Classifier(_num_fg(train_set), model_cfg))
    model, info = train_or_load(name, key, build, train_set, objective, train_cfg, seed, device, progress, use_cache)
    return model, {**info, "key": key}


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
                  progress: bool = True, use_cache: bool = True, desc: str | None = None,
                  pretraining: PretrainConfig | None = None) -> tuple[Segmenter, dict]:
    """The segmentation network trained on ``masks`` ((N, H, W) uint8, 255 = ignore), or on
    the ground-truth masks of ``train_set`` when ``masks`` is None (the upper bound).
    ``pretraining``: as in :func:`get_classifier`."""
    device = resolve_device(device)
    seed = int(seed)
    if train_cfg.batch_size < 2:
        raise ValueError(f"segmenter batch_size must be >= 2 (the ASPP's image-pooling branch normalises "
                         f"over the batch), got {train_cfg.batch_size}")
    labels = "ground truth" if masks is None else masks_digest(masks)
    data = train_set if masks is None else WithMasks(train_set, masks)
    train_cfg = train_cfg.for_init(model_cfg.init)
    spec = {"data": dataset_id(train_set), "labels": labels, "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(), "seed": seed}
    model_cfg, spec["init"] = with_init(model_cfg, PipelineConfig().pretraining if pretraining is None else pretraining,
                                        device=device, progress=progress, use_cache=use_cache)
    key = cache.artifact_key("segmenter", RECIPES["segmenter"], spec)
    name = desc or ("segmenter-fully-supervised" if masks is None else "segmenter")
    model, info = train_or_load(name, key, lambda: Segmenter(_num_fg(train_set) + 1, model_cfg), data, MaskLoss(),
                                 train_cfg, seed, device, progress, use_cache)
    return model, {**info, "key": key}


def get_video_saliency(train_set: Dataset, model_cfg: VideoModelConfig = VideoModelConfig(),
                       train_cfg: TrainConfig = TrainConfig(), objective: Objective | None = None, seed: int = 0,
                       window: int = 4, device: str | torch.device = "cpu", progress: bool = True,
                       use_cache: bool = True, pretraining: PretrainConfig | None = None) -> tuple[SaliencyNet, dict]:
    """The video saliency network (:class:`~s2d_core.models.video_saliency.SaliencyNet`) trained on
    windows of ``window`` frames of ``train_set``'s clips with ``objective`` (None: the scribble loss,
    :class:`~s2d_core.train.video.ScribbleSaliencyLoss`; :class:`~s2d_core.train.video.DenseSaliencyLoss`
    for the fully supervised bound), cached like every network. ``pretraining``: as in :func:`get_classifier`."""
    device = resolve_device(device)
    seed = int(seed)
    objective = objective if objective is not None else ScribbleSaliencyLoss()
    train_cfg = train_cfg.for_init(model_cfg.encoder.init)
    spec = {"data": dataset_id(train_set), "model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "seed": seed,
            "window": int(window), "objective": objective.identity()}
    encoder, spec["init"] = with_init(model_cfg.encoder, PipelineConfig().pretraining if pretraining is None
                                      else pretraining, device=device, progress=progress, use_cache=use_cache)
    model_cfg = dataclasses.replace(model_cfg, encoder=encoder)
    key = cache.artifact_key("video-saliency", RECIPES["video-saliency"], spec)
    model, info = train_or_load(f"video-{objective.name}-{model_cfg.motion}", key, lambda: SaliencyNet(model_cfg),
                                 ClipWindows(train_set, window), objective, train_cfg, seed, device, progress, use_cache,
                                 flips=False)
    return model, {**info, "key": key}


def _read_cams(path: Path, n: int) -> np.ndarray:
    cams = np.load(path, allow_pickle=False)
    if cams.ndim != 4 or len(cams) != n:
        raise ValueError(f"holds an array of shape {cams.shape}, expected ({n}, C, H, W)")
    return cams


def get_cams(method: MapMethod, dataset: Dataset, device: str | torch.device = "cpu", progress: bool = True,
             use_cache: bool = True) -> np.ndarray | list[np.ndarray]:
    """Maps of ``dataset`` from a map ``method``: (N, C, H, W) float16 in [0, 1].

    Cached when ``method`` has a ``cache_key`` (a method built by :func:`~s2d_core.pipeline.build_method`
    over a cached network has one) and the images share one size (synthetic data). The key
    names the network's training configuration, so do not reuse it for a model changed in place
    after it was loaded (pass ``use_cache=False``).
    """
    device = resolve_device(device)
    method_key = getattr(method, "cache_key", None)
    if not use_cache or method_key is None or not fixed_size(dataset):
        return compute_cams(method, dataset, device=device, progress=progress)
    key = cache.artifact_key("cams", RECIPES["cams"], {"method": method_key, "data": dataset_id(dataset)})
    path = cache.cache_dir() / "cams" / f"cams-{key}.npy"
    cams = cache.load_cached(path, lambda p: _read_cams(p, len(dataset)), f"maps of {method_key.get('method')}")
    if cams is not None:
        return cams
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


def tiny_sam_key(cfg: TinySAMConfig, seed: int = 0) -> str:
    """Artifact key of the tiny SAM of ``cfg`` and ``seed``."""
    return cache.artifact_key("tiny-sam", RECIPES["tiny-sam"],
                              {"model": cfg.to_dict(), "seed": int(seed), "world": RECIPES["object-world"]})


def get_tiny_sam(cfg: TinySAMConfig | None = None, seed: int = 0, device: str | torch.device = "cpu",
                 progress: bool = True, use_cache: bool = True, use_shipped: bool = True) -> tuple[torch.nn.Module, dict]:
    """The tiny SAM pre-trained class-agnostically on the object world: ``(sam in eval mode, info)``.

    The shipped file (``s2d_core/weights/``, :mod:`.shipping`) when it was made for this
    configuration and seed, else cached by configuration, seed and the recipe versions of the
    object world and the pre-training; ``info`` has the ``loss_curve``, ``seconds`` and ``from_cache``.
    """
    cfg = TinySAMConfig() if cfg is None else cfg
    device = resolve_device(device)
    key = tiny_sam_key(cfg, seed)
    path = _model_path("tiny-sam", key)
    sam = build_tiny_sam(cfg).to(device)
    shipped = shipped_entry(key) if use_shipped else None
    if shipped is not None:
        file, entry = shipped
        load_into(sam, load_file(str(file), device=str(device)), file, "the tiny SAM")
        return sam.eval(), {**entry.get("info", {}), "key": key, "from_cache": True, "source": "shipped"}

    def load(p: Path) -> dict:
        s = torch.load(p, map_location=device, weights_only=False)
        sam.load_state_dict(s["model"])
        return s["info"]

    info: dict[str, Any] | None = cache.load_cached(path, load, "tiny SAM") if use_cache else None
    if info is not None:
        info = {**info, "from_cache": True}
    else:
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
