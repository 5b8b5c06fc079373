"""Training objectives: one protocol for every loss a classifier is trained with.

An objective is called like a loss function of a model and a batch, and it describes itself
for the artifact cache::

    loss = objective(model, batch)        # batch: dict of tensors ("image", "tags", ...)
    objective.name, objective.version     # which recipe: part of the trained network's cache key
    objective.config()                    # the settings that change training (JSON-able)

The plain objectives live here: :class:`TagLoss` (the CAM classifier's multi-label soft margin)
and :class:`ViTTagLoss` (both heads of the ViT classifier). Densifiers that train their
classifier differently (C3, C4, C5) subclass :class:`Objective` next to their maps, and bump
their ``version`` whenever a change alters what the loss computes.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["MaskLoss", "Objective", "PretrainTagLoss", "TagLoss", "ViTTagLoss", "tag_cross_entropy"]


class Objective:
    """Base of the training objectives (see the module docstring).

    Subclasses set ``name`` and ``version`` and implement ``__call__``; ``needs`` lists the
    batch keys the loss reads besides ``image`` (checked before the first step).
    """

    name: str = "objective"
    version: int = 1
    needs: tuple[str, ...] = ("tags",)

    def config(self) -> dict[str, Any]:
        """Settings that change training (part of the cache key); none by default."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What the artifact cache keys on: name, version and config."""
        return {"name": self.name, "version": self.version, "config": self.config()}

    def check_batch(self, batch: dict) -> None:
        """Raise a ``ValueError`` naming the labels this objective needs and the batch lacks."""
        missing = [k for k in ("image", *self.needs) if k not in batch]
        if missing:
            raise ValueError(f"objective {self.name!r} needs {missing} in every batch; the batch has {sorted(batch)}")

    def __call__(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version}, config={self.config()})"


class TagLoss(Objective):
    """The CAM classifier's loss: multi-label soft margin of the pooled class scores on the tags."""

    name = "tags"

    def __call__(self, model, batch: dict) -> torch.Tensor:
        return model.loss(model(batch["image"]), batch["tags"])


class ViTTagLoss(Objective):
    """The ViT classifier's loss: soft margin of the class-token and the patch-token scores."""

    name = "vit-tags"

    def __call__(self, model, batch: dict) -> torch.Tensor:
        return model.tag_loss(model.tokens(batch["image"]), batch["tags"])


def tag_cross_entropy(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    r"""Softmax cross-entropy against the tags spread evenly, for many classes and few tags each.

    .. math:: \ell(s, y) = -\sum_k \frac{y_k}{\sum_j y_j} \log \frac{e^{s_k}}{\sum_j e^{s_j}}

    ``logits`` (B, K), ``tags`` (B, K) multi-hot with at least one tag per image. With 100+
    classes and one to three tags per image, a per-class sigmoid (soft margin) is dominated by
    the negatives and learns nothing for a long time; the softmax puts all the gradient on the
    classes present (Mahajan et al., ECCV 2018, pre-training on hashtags).
    """
    if logits.shape != tags.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tags {tuple(tags.shape)} must have the same shape")
    y = tags.float()
    n = y.sum(1, keepdim=True)
    if (n == 0).any():
        raise ValueError("tag_cross_entropy: every image needs at least one tag")
    return -(y / n * torch.log_softmax(logits, 1)).sum(1).mean()


class PretrainTagLoss(Objective):
    """Pre-training on the pretraining world's tags: :func:`tag_cross_entropy` of a CNN
    :class:`~s2d_core.models.Classifier`'s scores, or the sum over both heads of a
    :class:`~s2d_core.models.vit.ViTPretrainer` (class token and max-pooled patch tokens)."""

    name = "pretrain-tags"

    def __call__(self, model, batch: dict) -> torch.Tensor:
        out = model(batch["image"])
        scores = out if isinstance(out, tuple) else (out,)
        return sum(tag_cross_entropy(s, batch["tags"]) for s in scores)


class MaskLoss(Objective):
    """The segmentation network's loss: pixel cross-entropy on (pseudo) masks, 255 ignored."""

    name = "masks"
    needs = ("mask",)

    def __call__(self, model, batch: dict) -> torch.Tensor:
        return model.loss(model(batch["image"]), batch["mask"])
