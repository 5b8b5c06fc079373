"""Configuration of the map read-outs: scales and flip of every CAM, class-token attention."""

from __future__ import annotations

from dataclasses import dataclass

from ..configbase import Config, at_least, check

__all__ = ["AttentionConfig", "CAMConfig"]


@dataclass(frozen=True)
class CAMConfig(Config):
    """How maps are read from a trained classifier (every map method averages over these)."""

    scales: tuple[float, ...] = (1.0, 0.5, 1.5)
    """Input scales whose maps are averaged (after resizing back to the input size)."""
    flip: bool = True
    """Also average the map of the horizontally flipped image."""

    def validate(self) -> None:
        check(len(self.scales) >= 1 and all(0.1 <= s <= 4 for s in self.scales),
              f"CAMConfig.scales must be a non-empty list of values in [0.1, 4], got {self.scales}")


@dataclass(frozen=True)
class AttentionConfig(Config):
    """Class-token attention maps of a ViT classifier (the ``class_token_attention`` baseline)."""

    layers: int = 1
    """Average the class-to-patch attention of the last ``layers`` blocks (1: the last block only;
    MCTformer fuses several). Ignored with ``rollout``."""
    rollout: bool = False
    """Attention rollout (Abnar & Zuidema 2020): the product over all blocks of
    ``0.5 A + 0.5 I`` (head-averaged, rows renormalised), which follows attention through the
    residual connections."""

    rules = {"layers": at_least(1)}
