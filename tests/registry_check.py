"""Shared check for the method registry tests: train on the tiny preset in a throw-away cache,
run each method once with the one call of every map method, return the networks' cache keys."""

from __future__ import annotations

import torch

from s2d_core.data import get_dataset
from s2d_core.pipeline import build_method, get_pipeline


def run_registered(names, tmp_path, monkeypatch):
    """``(keys, train, cfg)``: ``keys[name]`` is the cache key of the network method ``name`` reads."""
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    train = get_dataset("synthetic", "train", "tiny")
    cfg = get_pipeline("tiny")
    batch = {k: torch.stack([train[i][k] for i in range(4)]) for k in ("image", "tags")}
    keys = {}
    for name in names:
        method, info = build_method(name, train, cfg, seed=0, progress=False)
        keys[name] = info["classifier"]["key"]
        assert method.model_key == keys[name], name
        out = method(batch)
        assert out.shape == (4, train.num_classes - 1, 64, 64), name
        assert out.min() >= 0 and out.max() <= 1 and (out.flatten(2).amax(2)[batch["tags"] == 0] == 0).all(), name
        assert method.cache_key is not None, name
    return keys, train, cfg
