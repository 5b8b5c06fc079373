"""Shared check for the densifier registry tests: train on the tiny preset in a throw-away cache,
run each method once with the uniform signature, return the classifiers' cache keys."""

from __future__ import annotations

import torch

from s2d_core.data import get_dataset
from s2d_core.densify import METHODS
from s2d_core.presets import get_pipeline


def run_registered(names, tmp_path, monkeypatch):
    """``(keys, train, cfg)``: ``keys[name]`` is the ``s2d_key`` of the network method ``name`` reads."""
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    train = get_dataset("synthetic", "train", "tiny")
    cfg = get_pipeline("tiny")
    batch = {k: torch.stack([train[i][k] for i in range(4)]) for k in ("image", "tags")}
    keys = {}
    for name in names:
        method, _ = METHODS[name](train, cfg, seed=0, progress=False)
        keys[name] = method.model.s2d_key
        out = method(batch["image"], batch["tags"])
        assert out.shape == (4, train.num_classes - 1, 64, 64), name
        assert method.cache_key is not None, name
    return keys, train, cfg
