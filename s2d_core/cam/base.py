"""One interface for every method that turns a batch into class maps, and their registry.

Every map method of the book -- the CAM, prototype CAMs, calibrated and multi-prototype CAMs,
class-token attention, proxy CAMs -- is a :class:`MapMethod` with one call, in the spirit of
pytorch-grad-cam::

    maps = method(batch)          # batch: {"image": (B, 3, H, W) in [0, 1], "tags": (B, C), ...}
    maps = method(images, tags)   # the same, for the two labels every image method reads
                                  # -> (B, C, H, W) in [0, 1], zero for untagged classes

A method declares the labels it reads (``needs``: ``("tags",)`` today; points, scribbles,
boxes, clips and flow for the methods of later chapters) and gets a clear error when a batch
lacks one. The base class runs the network in eval mode without gradients and restores the
caller's mode afterwards (:meth:`MapMethod.evaluating`), averages over the scales and flip of
:class:`~s2d_core.cam.config.CAMConfig`, normalises, and keys the artifact cache in one way
(:attr:`MapMethod.cache_key`). A subclass implements one scale, :meth:`MapMethod.single`.

Methods are registered where they are defined (:func:`register_method`), under a name that says
what they do, with the thesis label and the paper's acronym as aliases; the pipeline
(:mod:`s2d_core.pipeline`) trains what a registered method needs on demand.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data import collate, fixed_size
from ..models.objective import Objective
from ..progress import progress as progress_bar
from ..registry import Registry
from .config import CAMConfig

__all__ = ["METHODS", "MapMethod", "MethodSpec", "compute_cams", "max_normalise", "register_method",
           "restrict_to_tags", "scale_flip_average"]


def max_normalise(cams: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Divide each (image, class) map of ``cams`` (B, C, H, W) >= 0 by its maximum -> [0, 1]."""
    return cams / (cams.flatten(2).amax(2)[..., None, None] + eps)


def restrict_to_tags(cams: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor:
    """Zero the maps of classes an image is not tagged with. cams (B, C, H, W), tags (B, C)."""
    if tags is None:
        return cams
    if tags.shape != cams.shape[:2]:
        raise ValueError(f"tags must have shape {tuple(cams.shape[:2])} (B, C) to match cams, got {tuple(tags.shape)}")
    return cams * (tags > 0).to(cams.dtype)[..., None, None]


def scale_flip_average(fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], images: torch.Tensor,
                       tags: torch.Tensor | None = None, scales: tuple[float, ...] = (1.0,),
                       flip: bool = False) -> torch.Tensor:
    """Average ``fn(x, tags)`` over rescaled (and horizontally flipped) copies of ``images``.

    ``images`` (B, 3, H, W); ``fn`` maps a batch (B', 3, h, w) and its tags (B', C) (or None)
    to maps (B', C, h', w'); every map is resized to (H, W) (bilinear) and un-flipped before
    the average. Returns (B, C, H, W). Gradients flow through (the caller chooses no_grad).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    size = images.shape[-2:]
    total, n = None, 0
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                  align_corners=False, recompute_scale_factor=False)
        batch = torch.cat([x, x.flip(-1)]) if flip else x
        t = None if tags is None else (torch.cat([tags, tags]) if flip else tags)
        maps = F.interpolate(fn(batch, t), size=size, mode="bilinear", align_corners=False)
        if flip:
            maps = maps[: len(x)] + maps[len(x):].flip(-1)
        total = maps if total is None else total + maps
        n += 2 if flip else 1
    return total / n


class MapMethod:
    """Base of the map methods: ``method(batch) -> (B, C, H, W)`` in [0, 1] (module docstring).

    Parameters
    ----------
    model : the trained classifier the maps are read from.
    cam_cfg : scales and flip of the read-out.
    model_key : the artifact-cache key of ``model`` (the pipeline passes it); with it the maps of
        a whole split can be cached (:attr:`cache_key`); ``None`` for a model built by hand.

    Class attributes a subclass sets: ``name`` (its registry name), ``version`` (the recipe
    version of its maps: bump it when a change alters them), ``needs`` (the batch labels it
    reads), ``normalise`` (``"max"``: divide the scale-averaged map by its maximum, for scores
    such as ``ReLU(W^T F)``; ``"clamp"``: clip to [0, 1], for maps that are already probabilities).
    """

    name: str = "map"
    version: int = 1
    needs: tuple[str, ...] = ("tags",)
    normalise: str = "clamp"

    def __init__(self, model: torch.nn.Module, cam_cfg: CAMConfig = CAMConfig(), model_key: str | None = None) -> None:
        if not isinstance(cam_cfg, CAMConfig):
            raise TypeError(f"{type(self).__name__}: cam_cfg must be a CAMConfig (scales and flip), got "
                            f"{type(cam_cfg).__name__}; e.g. CAMConfig(scales=(1.0, 0.5), flip=True)")
        self.model, self.cam_cfg, self.model_key = model, cam_cfg, model_key

    # --- what a subclass implements ----------------------------------------------------------
    def single(self, images: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover
        """Maps of one scale: images (B, 3, h, w), tags (B, C) -> (B, C, h', w') (any resolution)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Settings that change the maps (part of :attr:`cache_key`); subclasses add theirs."""
        return {"cam": self.cam_cfg.to_dict()}

    # --- the shared machinery ------------------------------------------------------------------
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode for the block, then the caller's mode again (also after an exception)."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def check_batch(self, batch: Mapping[str, Any]) -> None:
        """Raise a ``ValueError`` naming the labels this method needs and ``batch`` lacks."""
        missing = [k for k in ("image", *self.needs) if batch.get(k) is None]
        if missing:
            raise ValueError(f"{type(self).__name__} ({self.name}) needs {missing} in the batch "
                             f"(it declares needs={self.needs}); got keys {sorted(k for k, v in batch.items() if v is not None)}")

    def maps(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Scale/flip-averaged, normalised maps restricted to the tags, with gradients and in the
        model's current mode (``__call__`` is the inference entry point)."""
        images = batch["image"]
        tags = batch.get("tags")
        tags = None if tags is None else tags.to(images.device)
        m = scale_flip_average(self.single, images, tags, self.cam_cfg.scales, self.cam_cfg.flip)
        m = max_normalise(m) if self.normalise == "max" else m.clamp(0, 1)
        return restrict_to_tags(m, tags)

    def __call__(self, batch: Mapping[str, Any] | torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        """``method(batch)`` or ``method(images, tags)`` -> maps (B, C, H, W) in [0, 1]."""
        if isinstance(batch, torch.Tensor):
            batch = {"image": batch, "tags": tags}
        elif tags is not None:
            raise TypeError("pass either a batch dict or (images, tags), not both")
        self.check_batch(batch)
        with torch.no_grad(), self.evaluating():
            return self.maps(batch)

    @property
    def cache_key(self) -> dict | None:
        """Identity of these maps for the artifact cache (None when the model is not a cached one)."""
        if self.model_key is None:
            return None
        return {"method": self.name, "version": self.version, "model": self.model_key, "config": self.config()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={type(self.model).__name__}, key={self.model_key})"


def compute_cams(method: MapMethod | Callable, dataset: Dataset, batch_size: int = 64,
                 device: str | torch.device = "cpu", progress: bool = True,
                 desc: str = "CAM") -> np.ndarray | list[np.ndarray]:
    """Run a map ``method`` over a data set.

    Returns float16 maps in [0, 1], in data-set order, restricted to each image's tags: one
    array (N, C, H, W) when all images have one size (the synthetic data; half precision
    keeps 2 000 images x 6 classes x 64^2 at 98 MB), else a list of (C, H_i, W_i) arrays
    (real data, processed one image at a time).
    """
    same_size = fixed_size(dataset)
    loader = DataLoader(dataset, batch_size=batch_size if same_size else 1, shuffle=False, collate_fn=collate)
    out = []
    for b in progress_bar(loader, desc=desc, disable=not progress):
        b = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
        cams = method(b) if isinstance(method, MapMethod) else method(b["image"], b["tags"])
        out.extend(cams.cpu().numpy().astype(np.float16))
    return np.stack(out) if same_size else out


# --- the registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MethodSpec:
    """A registered map method: what it does, what it trains, how its maps are read.

    ``build(model, cfg, model_key=None, train_set=None, device="cpu", seed=0) -> MapMethod``
    reads the maps from a trained classifier with the pipeline configuration ``cfg`` (a
    :class:`~s2d_core.pipeline.PipelineConfig`); ``objective(cfg) -> Objective`` is the loss its
    classifier is trained with (``None``: the plain tag loss, so methods that only read a
    classifier differently share one network).
    """

    name: str
    summary: str
    build: Callable[..., MapMethod]
    classifier: str = "cnn"
    """Which classifier the method reads: ``"cnn"`` (:class:`~s2d_core.models.Classifier`) or
    ``"vit"`` (:class:`~s2d_core.models.vit.ViTClassifier`)."""
    objective: Callable[[Any], Objective] | None = None
    label: str | None = None
    """The thesis label (``"C3"``), if the method is a contribution of the thesis."""
    paper: str | None = None
    """Paper acronym, venue and year (``"CPMC, TCSVT 2024"``)."""
    needs: tuple[str, ...] = ("tags",)
    """The labels the method's *training* needs (image-level tags for every image method so far);
    what its maps read at inference is the map method's own ``needs`` (the CAM's tags only
    restrict its maps)."""
    aliases: tuple[str, ...] = ()
    record_name: str | None = None
    """The name benchmark records were written under before the registry had this name; run ids
    keep using it, so every committed record still describes its run."""
    module: str = field(default="", compare=False)


METHODS: Registry[MethodSpec] = Registry(
    "method", hint="methods register when their module is imported; import s2d_core.pipeline to have them all")
"""Every map method, by name. Each registers when its module is imported (the densifiers with
:mod:`s2d_core.densify`); :func:`s2d_core.pipeline.list_methods` imports them all and lists them."""


def register_method(name: str, summary: str, build: Callable[..., MapMethod], *, aliases: tuple[str, ...] = (),
                    **kwargs) -> MethodSpec:
    """Register a map method (see :class:`MethodSpec`) under ``name`` and ``aliases``."""
    module = inspect.currentframe().f_back.f_globals.get("__name__", "")  # type: ignore[union-attr]
    spec = MethodSpec(name=name, summary=summary, build=build, aliases=tuple(aliases), module=module, **kwargs)
    return METHODS.register(name, spec, aliases)
