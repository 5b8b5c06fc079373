"""Class-token attention maps of a Vision Transformer (the ViT track's second baseline).

In a ViT with one class token per class (:class:`~s2d_core.models.vit.ViTClassifier`), the
attention that class token ``c`` pays to each patch token is a class-specific localisation
map (MCTformer, Xu et al. CVPR 2022). With ``A^{(l)}`` the head-averaged attention of block
``l`` (T x T, class tokens first):

* last layers: :math:`M_c = \\frac{1}{L}\\sum_{l > n - L} A^{(l)}[c, C:]`;
* rollout (Abnar & Zuidema, ACL 2020), which follows attention through the residual
  connections: :math:`R = \\prod_{l=n}^{1} \\mathrm{rownorm}(\\tfrac12 A^{(l)} + \\tfrac12 I)`,
  :math:`M_c = R[c, C:]`.

Maps are laid on the patch grid, averaged over scales and flip like every CAM of the book,
max-normalised and restricted to the image's tags: ``method(images, tags) -> (B, C, H, W)``.
"""

from __future__ import annotations

import torch

from ..models.vit import ViTClassifier, tokens_to_grid
from .base import MapMethod, register_method
from .config import AttentionConfig, CAMConfig


def rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout of head-averaged attentions, first block first, each (B, T, T):
    :math:`\\prod_l \\mathrm{rownorm}(0.5 A^{(l)} + 0.5 I)` with the last block on the left. (B, T, T)."""
    if not attentions:
        raise ValueError("rollout needs the attention of at least one block")
    eye = torch.eye(attentions[0].shape[-1], dtype=attentions[0].dtype, device=attentions[0].device)
    out = None
    for a in attentions:
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        out = a if out is None else a @ out
    return out


def class_attention_maps(model: ViTClassifier, images: torch.Tensor,
                         cfg: AttentionConfig = AttentionConfig()) -> torch.Tensor:
    """Class-to-patch attention (B, C, h, w) >= 0 (not normalised) for ``images`` (B, 3, H, W),
    H and W multiples of the patch size."""
    n_blocks = len(model.vit.blocks)
    layers = n_blocks if cfg.rollout else min(cfg.layers, n_blocks)
    out = model.tokens(images, attention_layers=layers)
    att = rollout(out["attention"]) if cfg.rollout else torch.stack(out["attention"]).mean(0)
    c = model.num_classes
    return tokens_to_grid(att[:, :c, c:].transpose(1, 2), out["grid"])


class ClassTokenAttention(MapMethod):
    """Class-token attention maps with the one signature ``method(batch)`` / ``method(images, tags)``.

    >>> method = ClassTokenAttention(vit_classifier, CAMConfig(), AttentionConfig(rollout=True))
    >>> maps = method(images, tags)       # (B, C, H, W) in [0, 1]
    """

    name = "class_token_attention"
    needs = ()
    normalise = "max"

    def __init__(self, model: ViTClassifier, cam_cfg: CAMConfig = CAMConfig(),
                 cfg: AttentionConfig = AttentionConfig(), model_key: str | None = None) -> None:
        if not isinstance(model, ViTClassifier):
            raise TypeError(f"ClassTokenAttention needs a ViTClassifier (one class token per class), "
                            f"got {type(model).__name__}")
        super().__init__(model, cam_cfg, model_key)
        self.cfg = cfg

    def config(self) -> dict:
        return {**super().config(), "attention": self.cfg.to_dict()}

    def single(self, images: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor:
        return class_attention_maps(self.model, self.model.fit_size(images), self.cfg)


register_method(
    "class_token_attention", "attention of each class token to the patch tokens of a ViT classifier",
    lambda model, cfg, model_key=None, **_: ClassTokenAttention(model, cfg.cam, cfg.attention, model_key),
    classifier="vit", aliases=("vit_attn", "mctformer"), paper="MCTformer, CVPR 2022", record_name="vit_attn")

__all__ = ["ClassTokenAttention", "class_attention_maps", "rollout"]
