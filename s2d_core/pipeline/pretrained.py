"""Pre-trained backbones as artifacts: shipped with the package, else trained once and cached.

``init="synthetic"`` in a :class:`~s2d_core.models.config.ModelConfig` or
:class:`~s2d_core.models.config.ViTConfig` asks for the backbone pre-trained on the pretraining
world (:mod:`s2d_core.data.pretraining`, the stand-in for ImageNet) by the recipe of
:class:`~s2d_core.train.config.PretrainConfig`. :func:`pretrained_weights` returns its file:

1. the file in ``s2d_core/weights/`` when the manifest lists one made for exactly this key
   (architecture, world, recipe, versions) and it has been built there, after checking its sha256;
2. else the **cached** file in ``cache_dir()/pretrained/``;
3. else it **pre-trains** the backbone now (minutes; resumable), measures pre-training accuracy
   on the world's test split, caches the weights as float16 safetensors, and compares their
   weights' digest with the manifest's reference build (``info["matches_reference"]``; a warning when they
   differ: another CPU or torch build rounds differently).

Either way the network is built from the float16 file, so a shipped and a locally built
backbone are the same network. :mod:`.shipping` rebuilds the shipped files.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from .. import cache
from ..data.pretraining import RECIPE_VERSION as WORLD_VERSION
from ..data.pretraining import PretrainingWorld
from ..devices import resolve_device
from ..models.config import ModelConfig, ViTConfig
from ..models.weights import file_sha256, load_weights, manifest_entry, matches_entry, save_weights, shipped_entry
from ..train.config import PretrainConfig
from ..train.pretrain import RECIPE_VERSION, backbone_of, pretrain_backbone

__all__ = ["architecture", "pretrained_weights", "short_name", "weights_key", "with_init"]


def architecture(model_cfg: ModelConfig | ViTConfig) -> dict:
    """What fixes a backbone's weight shapes (and nothing else): the pre-trained file depends on it.
    Output stride, ASPP rates and the ViT's image size do not change the weights."""
    if isinstance(model_cfg, ViTConfig):
        return {"vit": model_cfg.backbone, "patch_size": model_cfg.patch_size, "embed_dim": model_cfg.embed_dim,
                "depth": model_cfg.depth, "num_heads": model_cfg.num_heads}
    if isinstance(model_cfg, ModelConfig):
        return {"cnn": model_cfg.backbone}
    raise TypeError(f"model_cfg must be a ModelConfig or a ViTConfig, got {type(model_cfg).__name__}")


def _recipe_spec(model_cfg: ModelConfig | ViTConfig, cfg: PretrainConfig) -> dict:
    vit = isinstance(model_cfg, ViTConfig)
    return {"arch": architecture(model_cfg), "world": cfg.world.to_dict(), "world_version": WORLD_VERSION,
            "train": (cfg.vit if vit else cfg.cnn).to_dict(), "seed": cfg.seed,
            **({} if vit else {"output_stride": cfg.cnn_output_stride})}


def weights_key(model_cfg: ModelConfig | ViTConfig, cfg: PretrainConfig) -> str:
    """Artifact key of the backbone ``model_cfg``'s architecture pre-trained by recipe ``cfg``."""
    return cache.artifact_key("pretrained-backbone", RECIPE_VERSION, _recipe_spec(model_cfg, cfg))


def short_name(model_cfg: ModelConfig | ViTConfig) -> str:
    """A file-name-friendly name of the architecture (``resnet10t``, ``vit-128w4d8p``)."""
    a = architecture(model_cfg)
    if "vit" in a:
        return f"vit-{a['embed_dim']}w{a['depth']}d{a['patch_size']}p"
    return a["cnn"]


@torch.no_grad()
def _test_scores(net: torch.nn.Module, cfg: PretrainConfig, device: torch.device, progress: bool) -> dict:
    """Pre-training accuracy on the world's test split: macro mAP and the share of images whose
    top-n classes (n = objects tagged) are exactly their tags."""
    test = PretrainingWorld(cfg.world, "test", progress=progress)
    scores = []
    for i in range(0, len(test), 128):
        x = torch.stack([test[j]["image"] for j in range(i, min(i + 128, len(test)))]).to(device)
        out = net(x)
        s = torch.stack(out).mean(0) if isinstance(out, tuple) else out
        scores.append(s.float().cpu().numpy())
    s, y = np.concatenate(scores), test.data["tags"]
    present = y.sum(0) > 0
    top = np.argsort(-s, 1)
    exact = np.mean([set(top[i, : int(y[i].sum())]) == set(np.flatnonzero(y[i])) for i in range(len(y))])
    return {"test_map": float(average_precision_score(y[:, present], s[:, present], average="macro")),
            "test_exact": float(exact), "test_images": int(len(y))}


def pretrained_weights(model_cfg: ModelConfig | ViTConfig, cfg: PretrainConfig | None = None,
                       device: str | torch.device = "cpu", progress: bool = True,
                       use_cache: bool = True) -> tuple[Path, dict]:
    """The file of the backbone pre-trained for ``model_cfg``'s architecture by recipe ``cfg``
    (None: ``PretrainConfig()``): ``(path, info)``; see the module docstring for where it comes from.
    ``info``: ``key``, ``source`` (``"shipped"``, ``"cache"`` or ``"trained now"``), and the
    pre-training's ``loss`` curve, ``seconds``, ``images_per_second``, ``test_map``, ``test_exact``."""
    cfg = PretrainConfig() if cfg is None else cfg
    key = weights_key(model_cfg, cfg)
    found = shipped_entry(key)
    if found is not None:
        path, entry = found
        return path, {**entry.get("info", {}), "key": key, "source": "shipped"}
    path = cache.cache_dir() / "pretrained" / f"{short_name(model_cfg)}-{key}.safetensors"
    if not use_cache:
        path = path.with_name(f".uncached-{path.name}")
    meta = path.with_suffix(".json")
    if use_cache and path.is_file() and meta.is_file():
        def read(p: Path) -> dict:
            load_weights(p)  # parses the file: a corrupt one is moved aside and rebuilt
            return json.loads(meta.read_text())
        info = cache.load_cached(path, read, f"pre-trained {short_name(model_cfg)} backbone")
        if info is not None:
            return path, {**info, "key": key, "source": "cache"}
    device = resolve_device(device)
    ckpt = path.with_suffix(".ckpt") if use_cache else None
    net, info = pretrain_backbone(model_cfg, cfg, device=device, progress=progress, checkpoint=ckpt)
    info = {**info, **_test_scores(net, cfg, device, progress), "spec": _recipe_spec(model_cfg, cfg),
            "torch": torch.__version__}
    save_weights(backbone_of(net).state_dict(), path, {"key": key})  # no timings: the file is reproducible
    cache.atomic_write_bytes(meta, json.dumps(info, indent=1).encode())
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    ref = manifest_entry(key)
    match = None if ref is None else matches_entry(path, ref)
    if match is False:
        warnings.warn(f"the pre-trained {short_name(model_cfg)} backbone built here differs from the reference build "
                      f"in manifest.json (sha256); expected on another CPU or torch build (last bits of the sums), "
                      f"so numbers may differ slightly from the book's", UserWarning, stacklevel=2)
    return path, {**info, "key": key, "source": "trained now", "matches_reference": match}


def with_init(model_cfg, cfg: PretrainConfig | None = None, device: str | torch.device = "cpu",
              progress: bool = True, use_cache: bool = True):
    """``(model_cfg ready to build, init identity for cache keys)``. For ``init="synthetic"`` the
    config gets the pre-trained file as ``pretrained_file`` and the identity is the weights' key;
    other configs are returned unchanged with the identity ``init`` itself."""
    if model_cfg.init != "synthetic":
        return model_cfg, model_cfg.init
    if model_cfg.pretrained_file is not None:  # a file chosen by hand: key on its contents
        return model_cfg, {"file_sha256": file_sha256(model_cfg.pretrained_file)}
    path, info = pretrained_weights(model_cfg, cfg, device=device, progress=progress, use_cache=use_cache)
    return dataclasses.replace(model_cfg, pretrained_file=str(path)), {"synthetic": info["key"]}
