"""A tiny SAM: ``segment_anything.modeling.Sam`` built from the package's own modules at CPU size.

The image encoder (a ViT), the prompt encoder and the two-way mask decoder are SAM's classes,
instantiated small (:class:`~s2d_core.models.config.TinySAMConfig`), so ``SamPredictor`` runs on the
tiny model exactly as on the real one. :mod:`s2d_core.train.promptable` pre-trains it on the
object world; :func:`decode` is the batched decoder that training needs.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from .config import TinySAMConfig


def build_tiny_sam(cfg: TinySAMConfig = TinySAMConfig()) -> nn.Module:
    """An untrained ``segment_anything.modeling.Sam`` at the size of ``cfg``.

    Same architecture as SAM's ``_build_sam`` with global attention in every block (at 16 x 16
    tokens windows buy nothing) and absolute position embeddings. The image embedding is
    ``(prompt_dim, img_size / patch_size, img_size / patch_size)``; the decoder's low-resolution
    masks are 4x finer, i.e. the input resolution for ``patch_size=4``.
    """
    grid = cfg.img_size // cfg.patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim, depth=cfg.depth,
            num_heads=cfg.num_heads, mlp_ratio=4.0, out_chans=cfg.prompt_dim, qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), use_abs_pos=True, use_rel_pos=False,
            window_size=0, global_attn_indexes=()),
        prompt_encoder=PromptEncoder(embed_dim=cfg.prompt_dim, image_embedding_size=(grid, grid),
                                     input_image_size=(cfg.img_size, cfg.img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=cfg.decoder_depth, embedding_dim=cfg.prompt_dim,
                                          mlp_dim=cfg.decoder_mlp_dim, num_heads=cfg.decoder_heads),
            transformer_dim=cfg.prompt_dim, iou_head_depth=3, iou_head_hidden_dim=cfg.prompt_dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def decode(sam: nn.Module, image_embeddings: torch.Tensor, sparse: torch.Tensor,
           dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's mask decoder for a batch of *different* images, one prompt set each.

    ``MaskDecoder.predict_masks`` repeats one image's embedding for every prompt set; training
    needs ``B`` images with one prompt set each. This is the same computation with the
    repetition replaced by the batch (a test checks it against ``predict_masks`` image by image).

    Parameters
    ----------
    image_embeddings : ``(B, D, h, w)`` from ``sam.image_encoder``.
    sparse, dense : ``(B, N, D)`` and ``(B, D, h, w)`` from ``sam.prompt_encoder``.

    Returns
    -------
    masks ``(B, 4, 4h, 4w)`` logits (index 0: the single-mask output; 1-3: the three
    multimask outputs) and ``iou`` ``(B, 4)`` predicted IoUs.
    """
    dec = sam.mask_decoder
    b = image_embeddings.shape[0]
    if sparse.shape[0] != b or dense.shape[0] != b:
        raise ValueError(f"decode: {b} image embeddings but prompts for {sparse.shape[0]} / {dense.shape[0]}")
    out = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    tokens = torch.cat((out.unsqueeze(0).expand(b, -1, -1), sparse), dim=1)
    src = image_embeddings + dense
    pos = sam.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1)
    _, c, h, w = src.shape
    hs, src = dec.transformer(src, pos, tokens)
    up = dec.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(hs[:, 1 + i]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1)
    _, c2, h2, w2 = up.shape
    masks = (hyper @ up.reshape(b, c2, h2 * w2)).reshape(b, -1, h2, w2)
    return masks, dec.iou_prediction_head(hs[:, 0])
