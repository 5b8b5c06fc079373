"""A Vision Transformer classifier with one class token per class, built from timm's ViT.

The ViT track of the book (MCTformer, Xu et al. CVPR 2022, and its successors): a sequence of
``C`` class tokens and ``N = h w`` patch tokens goes through the transformer blocks; then

* each class token ``t_c`` (D) gives the class-token score :math:`s^{cls}_c = v_c^\\top t_c`;
* the patch tokens, laid back on their grid ``P`` (D, h, w), give a CNN-style CAM through a
  bias-free 1 x 1 head ``W`` (C, D): :math:`\\mathrm{CAM}_c = \\mathrm{ReLU}(W_c^\\top P)`, and the
  patch score :math:`s^{patch}_c = \\max_p W_c^\\top P(p)` (ToCo's global max pooling, the
  default; ``ViTConfig.pooling="avg"`` averages as the CNN track does);
* the attention of class token ``c`` to the patch tokens is a second, class-specific map.

Both scores are trained with the multi-label soft-margin loss. ``features`` returns the patch
grid and ``head`` is a 1 x 1 convolution exactly as in :class:`~s2d_core.models.Classifier`,
so :class:`~s2d_core.cam.CAM` reads the patch-token CAM of this model unchanged.

The transformer itself (patch embedding, position embedding, blocks, final norm) is timm's,
so ImageNet weights load as for any timm model; the one pretrained class token initialises
all ``C`` class tokens (as MCTformer does).
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, resample_abs_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from .backbones import InputNormalisation, create_timm_model, load_synthetic
from .weights import load_into, load_weights
from .config import ModelConfig, ViTConfig


def create_vit(cfg: ViTConfig) -> nn.Module:
    """timm ``VisionTransformer`` for ``cfg``: no classification head, any input size."""
    if not timm.is_model(cfg.backbone):
        close = timm.list_models("vit_*")[:8]
        raise ValueError(f"unknown timm ViT {cfg.backbone!r}; e.g. {close}")
    kwargs: dict = dict(num_classes=0, img_size=cfg.img_size, dynamic_img_size=True,
                        drop_path_rate=cfg.drop_path_rate)
    for k in ("patch_size", "embed_dim", "depth", "num_heads"):
        if getattr(cfg, k) is not None:
            kwargs[k] = getattr(cfg, k)
    net = create_timm_model(cfg.backbone, cfg.init == "imagenet", cfg.pretrained_file if cfg.init == "imagenet" else None,
                            **kwargs)
    plain = (getattr(net, "cls_token", None) is not None and getattr(net, "pos_embed", None) is not None
             and not net.no_embed_class and not getattr(net, "num_reg_tokens", 0)
             and type(net.patch_embed) is PatchEmbed and all(type(b) is Block for b in net.blocks))
    if not plain:
        raise ValueError(f"timm model {cfg.backbone!r} is not a plain ViT: the ViT track needs one class token, a "
                         f"learned position embedding that covers it, no register tokens, timm's PatchEmbed and "
                         f"standard Blocks (e.g. vit_tiny/small/base_patch16_224, deit_*; not hybrids or parallel blocks)")
    if cfg.init == "synthetic":
        if cfg.pretrained_file is None:
            load_synthetic(net, None, f"ViT {cfg.backbone!r}")
        state = load_weights(cfg.pretrained_file)
        pos = state.get("pos_embed")
        if pos is not None and pos.shape != net.pos_embed.shape:  # pre-trained at another image size
            g = net.patch_embed.grid_size
            state["pos_embed"] = resample_abs_pos_embed(pos, new_size=list(g), num_prefix_tokens=1)
        load_into(net, state, cfg.pretrained_file, f"ViT {cfg.backbone!r} ({cfg.embed_dim} wide, depth {cfg.depth})")
    return net


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Patch tokens (B, N, D) -> feature map (B, D, h, w).

    ``grid`` = (h, w) when known (from the image size and patch size); ``None``: the grid must be
    square. Raises a ``ValueError`` naming both when ``N`` does not fit, instead of a silently
    scrambled map (e.g. when class or register tokens were left in the sequence).
    """
    if tokens.ndim != 3:
        raise ValueError(f"patch tokens must have shape (B, N, D), got {tuple(tokens.shape)}")
    n = tokens.shape[1]
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{n} patch tokens do not form a square grid; pass grid=(h, w) "
                             f"(did the sequence keep its class/register tokens?)")
        grid = (side, side)
    h, w = int(grid[0]), int(grid[1])
    if h * w != n:
        raise ValueError(f"{n} patch tokens cannot be laid on a {h} x {w} grid ({h * w} cells); "
                         f"check the image size, the patch size and the number of prefix tokens")
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def block_attention(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Attention weights of a timm ViT ``block`` on its input ``x`` (B, T, D): (B, heads, T, T).

    timm computes attention with a fused kernel that never materialises the weights, so they
    are recomputed here from the block's own layers (same queries and keys, same scale)."""
    a = block.attn
    b, t, _ = x.shape
    qkv = a.qkv(block.norm1(x)).reshape(b, t, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
    q, k = a.q_norm(qkv[0]), a.k_norm(qkv[1])
    return ((q * a.scale) @ k.transpose(-2, -1)).softmax(-1)


class ViTClassifier(nn.Module):
    """C class tokens + patch tokens through a timm ViT; two multi-label heads (see module doc).

    Parameters
    ----------
    num_classes : number of *foreground* classes ``C``.
    cfg : the transformer (timm architecture, size, pretrained weights).
    """

    def __init__(self, num_classes: int, cfg: ViTConfig = ViTConfig()) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg, self.num_classes = cfg, num_classes
        # the normalisation reads timm's pretrained_cfg of the architecture, as for the CNNs
        self.normalise = InputNormalisation(ModelConfig(backbone=cfg.backbone, init=cfg.init))
        self.vit = create_vit(cfg)
        self.patch_size = int(self.vit.patch_embed.patch_size[0])
        d = self.vit.embed_dim
        self.channels = [d]
        base = self.vit.cls_token.detach().clone()  # (1, 1, D): pretrained, or timm's init
        self.class_tokens = nn.Parameter(base.expand(1, num_classes, d) + 0.02 * torch.randn(1, num_classes, d))
        self.vit.cls_token = None  # replaced by the C class tokens; keeps it out of the state dict
        self.token_head = nn.Parameter(0.02 * torch.randn(num_classes, d))
        self.head = nn.Conv2d(d, num_classes, 1, bias=False)

    # --- the sequence -----------------------------------------------------------------------
    def _grid_size(self, images: torch.Tensor) -> tuple[int, int]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"image size {h} x {w} is not a multiple of the patch size {p}; resize or pad "
                             f"the images (ViTClassifier.fit_size does it)")
        return h // p, w // p

    def fit_size(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (B, 3, H, W) to the nearest multiples of the patch size (no-op when they are):
        maps computed on the result are resized back to (H, W) exactly, with no padding offset."""
        p = self.patch_size
        h, w = images.shape[-2:]
        hh, ww = max(p, round(h / p) * p), max(p, round(w / p) * p)
        if (hh, ww) == (h, w):
            return images
        return F.interpolate(images, size=(hh, ww), mode="bilinear", align_corners=False)

    def tokens(self, images: torch.Tensor, attention_layers: int = 0) -> dict:
        """Run the transformer. ``images`` (B, 3, H, W) in [0, 1], H and W multiples of the patch size.

        Returns a dict: ``class`` (B, C, D) class tokens and ``patch`` (B, N, D) patch tokens after
        the final norm, ``grid`` (h, w), and when ``attention_layers`` = L > 0, ``attention``: the
        head-averaged weights (B, T, T) of the last L blocks (T = C + N, class tokens first).
        """
        grid = self._grid_size(images)
        v = self.vit
        n_blocks = len(v.blocks)
        if not 0 <= attention_layers <= n_blocks:
            raise ValueError(f"attention_layers must be in [0, {n_blocks}] (the number of blocks), got {attention_layers}")
        x = v.patch_embed(self.normalise(images))  # (B, h, w, D): timm's NHWC output with dynamic sizes
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        pos = resample_abs_pos_embed(v.pos_embed, new_size=grid, old_size=v.patch_embed.grid_size,
                                     num_prefix_tokens=1)
        cls = (self.class_tokens + pos[:, :1]).expand(x.shape[0], -1, -1)
        x = v.norm_pre(v.pos_drop(torch.cat([cls, x + pos[:, 1:]], 1)))
        attn = []
        for i, blk in enumerate(v.blocks):
            if i >= n_blocks - attention_layers:
                attn.append(block_attention(blk, x).mean(1))
            x = blk(x)
        x = v.norm(x)
        c = self.num_classes
        out = {"class": x[:, :c], "patch": x[:, c:], "grid": grid}
        if attention_layers:
            out["attention"] = attn
        return out

    # --- the classifier interface shared with the CNN track -------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Patch-token grid ``P``: (B, D, h, w) (images are resized to patch multiples first)."""
        t = self.tokens(self.fit_size(images))
        return tokens_to_grid(t["patch"], t["grid"])

    def class_maps(self, features: torch.Tensor) -> torch.Tensor:
        """``W^T P`` before ReLU and pooling: (B, C, h, w)."""
        return self.head(features)

    def scores(self, out: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(class-token logits, patch-token logits), each (B, C), from :meth:`tokens`' output."""
        s_cls = (out["class"] * self.token_head).sum(-1)
        if self.cfg.pooling == "max":  # max over the token scores; GAP and the head commute for "avg"
            s_patch = (out["patch"] @ self.head.weight.flatten(1).T).amax(1)
        else:
            s_patch = self.head(out["patch"].mean(1)[..., None, None]).flatten(1)
        return s_cls, s_patch

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores (B, C): the mean of the class-token and patch-token logits."""
        s_cls, s_patch = self.scores(self.tokens(self.fit_size(images)))
        return (s_cls + s_patch) / 2

    @staticmethod
    def loss(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Multi-label soft-margin loss; ``tags`` (B, C) multi-hot."""
        if logits.shape != tags.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and tags {tuple(tags.shape)} must have the same shape")
        return F.multilabel_soft_margin_loss(logits, tags.float())

    def tag_loss(self, out: dict, tags: torch.Tensor) -> torch.Tensor:
        """Soft-margin loss of both heads (their sum), from :meth:`tokens`' output."""
        s_cls, s_patch = self.scores(out)
        return self.loss(s_cls, tags) + self.loss(s_patch, tags)


class ViTPretrainer(nn.Module):
    """The ViT as it is pre-trained on the pretraining world: one class token, two heads.

    * the **class token** ``t`` gives image scores :math:`s^{cls} = V t` (V: K x D), the usual
      ViT classifier;
    * the **patch tokens** ``P`` (N, D) each get class scores :math:`W P_n` and the image score is
      their maximum, :math:`s^{patch}_k = \\max_n W_k^\\top P_n` (global max pooling, as ToCo and
      ViT-PCM-style methods train patch tokens).

    Loss (:class:`~s2d_core.models.objective.PretrainTagLoss`): the tag cross-entropy of both
    heads. Why the second head: with the class-token loss
    alone, nothing asks a patch token to describe *its* patch; attention mixes every token
    towards the image's summary and patch tokens become alike (token collapse, reported even
    with ImageNet weights by ToCo, CVPR 2023). Max pooling asks at least one token per object to
    name the object by itself, and the others not to name it wrongly, so tokens on different
    objects stay different -- the property the ViT track's CAMs, proxies and affinities read.
    The transformer (``vit``) is what transfers; both heads are dropped afterwards.
    """

    def __init__(self, num_classes: int, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        self.vit = create_vit(cfg)
        d = self.vit.embed_dim
        self.class_head = nn.Linear(d, num_classes)
        self.patch_head = nn.Linear(d, num_classes, bias=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class-token logits, max-pooled patch-token logits), each (B, K), for images (B, 3, H, W) in [0, 1]."""
        x = self.vit.forward_features(images)  # (B, 1 + N, D) after the final norm
        return self.class_head(x[:, 0]), self.patch_head(x[:, 1:]).amax(1)


__all__ = ["ViTClassifier", "ViTPretrainer", "block_attention", "create_vit", "tokens_to_grid"]
