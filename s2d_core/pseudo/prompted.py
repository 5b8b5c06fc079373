"""C6: pseudo masks from a promptable segmenter asked with prompts chosen from the CAM.

For each tagged class of an image: :func:`~s2d_core.pseudo.prompts.select_prompts` picks points
(or a box) from the class's CAM; each positive point (with the class's negative points) is one
question to the segmenter; among its candidate masks, the one that **agrees best with the CAM**
(IoU with the CAM foreground ``CAM > t``) is kept, if that IoU is at least
``C6Config.min_agreement``; the class's mask is the union of its kept masks. Classes are merged into one label map: pixels no class claims are background, and where
two classes claim a pixel the mask with the higher agreement wins.

Any CAM method can be enhanced this way (``<method> + C6``): only its CAMs are needed. Each
prompt strategy is a registered enhancer (:data:`~s2d_core.pseudo.enhancers.ENHANCERS`):
``spectral_prompts`` (C6 itself; aliases ``c6``, ``spectral``) and the baselines
``peak_prompt`` (S2C-style), ``random_prompts``, ``kmeans_prompts`` and ``box_prompt``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..arrays import to_numpy, to_uint8
from ..progress import progress as progress_bar
from .config import C6Config
from .enhancers import register_enhancer
from .prompts import Prompts, select_prompts


def mask_agreement(masks: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """IoU of each candidate ``(M, H, W)`` bool with the CAM foreground ``(H, W)`` bool -> ``(M,)``."""
    masks = np.asarray(masks, bool)
    inter = (masks & foreground[None]).sum((1, 2))
    union = (masks | foreground[None]).sum((1, 2))
    return inter / np.maximum(union, 1)


def segmenter_features(predictor) -> np.ndarray | None:
    """The image embedding ``(D, h, w)`` of a ``SamPredictor`` whose image is set (None otherwise),
    cropped to the image: SAM pads the resized image at the bottom and right to a square, and
    those cells describe padding, not the image."""
    if not (hasattr(predictor, "get_image_embedding") and getattr(predictor, "is_image_set", False)):
        return None
    emb = predictor.get_image_embedding()[0].detach().cpu().numpy()
    stride = predictor.model.image_encoder.img_size / emb.shape[-1]
    h, w = predictor.input_size
    return emb[:, :int(np.ceil(h / stride)), :int(np.ceil(w / stride))]


def image_features(image: np.ndarray) -> np.ndarray:
    """Colour features ``(3, H, W)`` of an ``(H, W, 3)`` uint8 image, centred on the image mean
    (so that cosine similarity compares colours relative to the scene)."""
    x = np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0
    return x - x.mean(axis=(1, 2), keepdims=True)


def ask(predictor, prompts: Prompts) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate masks ``(M, H, W)`` and scores ``(M,)`` for each question in ``prompts``: one per
    positive point (with all negatives), or one for the box (with the negatives). A lone point
    asks for three candidates (SAM's answer to an ambiguous click), a point with negatives or a
    box for one."""
    neg = prompts.negatives
    answers = []
    if prompts.box is not None:
        pts = neg if len(neg) else None
        masks, scores, _ = predictor.predict(point_coords=pts, point_labels=np.zeros(len(neg)) if len(neg) else None,
                                             box=prompts.box, multimask_output=False)
        answers.append((masks, scores))
    for p in prompts.positives:
        pts = np.concatenate([p[None], neg])
        lab = np.concatenate([[1], np.zeros(len(neg))])
        # one click is ambiguous (three candidates); with negatives SAM gives one mask (its output 0)
        masks, scores, _ = predictor.predict(point_coords=pts, point_labels=lab, multimask_output=len(neg) == 0)
        answers.append((masks, scores))
    return answers


def c6_pseudo_mask(predictor, image, cam, tags, threshold: float, cfg: C6Config = C6Config(),
                   features: np.ndarray | None = None, rng: np.random.Generator | None = None,
                   details: bool = False):
    """One C6 pseudo mask.

    Parameters
    ----------
    predictor : a ``SamPredictor`` (real or tiny SAM) or :class:`~s2d_core.models.promptable.RandomWalkerPredictor`.
    image : ``(3, H, W)`` in [0, 1] or ``(H, W, 3)`` uint8.
    cam : ``(C, H, W)`` CAM in [0, 1] over foreground classes (channel ``c-1`` is class ``c``).
    tags : ``(C,)`` multi-hot.
    threshold : the background score: a class's foreground is ``CAM_c > threshold``.
    features : ``(D, h, w)`` graph features; None takes ``cfg.features`` (the segmenter's
        embedding, or the image colours when the segmenter has none).

    Returns
    -------
    ``(H, W)`` uint8 label map (0 background, 1..C), and with ``details`` a dict per class of
    its prompts, the chosen masks and their agreement.
    """
    cam = to_numpy(cam).astype(np.float32, copy=False)
    tags = to_numpy(tags)
    img = to_uint8(image)
    if cam.ndim != 3 or cam.shape[1:] != img.shape[:2]:
        raise ValueError(f"cam must be (C, H, W) with (H, W) = image size {img.shape[:2]}, got {cam.shape}")
    if tags.shape != (cam.shape[0],):
        raise ValueError(f"tags must be ({cam.shape[0]},) to match cam, got {tags.shape}")
    predictor.set_image(img)
    if features is None:
        features = segmenter_features(predictor) if cfg.features == "segmenter" else None
        if features is None:
            features = image_features(img)
    classes = np.nonzero(tags > 0)[0]
    best = cam[classes].max(0) if len(classes) else np.zeros(cam.shape[1:], np.float32)
    background = best < cfg.negative_threshold
    chosen = []
    info = {}
    for c in classes:
        fg = cam[c] > threshold
        pr = select_prompts(cam[c], threshold, features, cfg, background=background, rng=rng)
        union = np.zeros(fg.shape, bool)
        agree = 0.0
        for masks, scores in ([] if pr.empty else ask(predictor, pr)):
            a = mask_agreement(masks, fg)
            j = int(np.lexsort((np.asarray(scores), a))[-1])  # best agreement, then the segmenter's own score
            if a[j] >= cfg.min_agreement:  # an answer unrelated to the CAM is not kept
                union |= masks[j]
                agree = max(agree, float(a[j]))
        chosen.append((agree, int(c) + 1, union))
        if details:
            info[int(c) + 1] = {"prompts": pr, "mask": union, "agreement": agree}
    out = np.zeros(cam.shape[1:], np.uint8)
    for agree, label, union in sorted(chosen, key=lambda t: t[0]):  # higher agreement painted last: wins
        out[union] = label
    return (out, info) if details else out


def c6_mask_of(predictor, item: dict, cam, threshold: float, cfg: C6Config = C6Config(),
               feature_predictor=None, rng: np.random.Generator | None = None, strategy: str | None = None) -> np.ndarray:
    """The C6 pseudo mask of one data-set ``item`` (its ``image`` and ``tags``) from its ``cam``.

    ``feature_predictor``: a ``SamPredictor`` whose embedding gives the graph features when
    ``predictor`` has none (the random walker gets the tiny SAM's, so both segmenters are asked
    the same questions). ``strategy`` overrides ``cfg.strategy``.
    """
    cfg = cfg if strategy is None else cfg.replace(strategy=strategy)
    feats = None
    if feature_predictor is not None and cfg.features == "segmenter":
        feature_predictor.set_image(to_uint8(item["image"]))
        feats = segmenter_features(feature_predictor)
    return c6_pseudo_mask(predictor, item["image"], np.asarray(cam, np.float32), item["tags"], threshold, cfg,
                          features=feats, rng=rng)


def make_c6_masks(predictor, dataset, cams: Sequence, threshold: float, cfg: C6Config = C6Config(),
                  feature_predictor=None, seed: int = 0, indices: Sequence[int] | None = None,
                  progress: bool = True) -> np.ndarray:
    """C6 pseudo masks for (a subset of) a data set: ``(N, H, W)`` uint8.

    ``cams[i]`` is the CAM of ``dataset[indices[i]]``; ``feature_predictor`` as in :func:`c6_mask_of`.
    """
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    if len(cams) != len(idx):
        raise ValueError(f"{len(cams)} CAMs for {len(idx)} images")
    rng = np.random.default_rng(seed)
    out = [c6_mask_of(predictor, dataset[int(i)], cams[n], threshold, cfg, feature_predictor, rng)
           for n, i in enumerate(progress_bar(idx, desc=f"C6 {cfg.strategy} -> {cfg.segmenter}", disable=not progress))]
    return np.stack(out)


_SUMMARIES = {
    "spectral": ("spectral_prompts", ("c6", "spectral"), "one point per cluster of the CAM foreground's graph "
                 "(normalised Laplacian, eigengap), answered by a promptable segmenter", "C6", None),
    "peak": ("peak_prompt", ("peak", "s2c"), "one point at the CAM's maximum (S2C-style baseline)", None, "S2C, CVPR 2024"),
    "random": ("random_prompts", ("random",), "random points in the CAM foreground (baseline)", None, None),
    "kmeans": ("kmeans_prompts", ("kmeans",), "one point per k-means cluster of features and positions, no graph "
               "(baseline)", None, None),
    "box": ("box_prompt", ("box",), "the box around the CAM foreground (baseline)", None, None),
}
for _strategy, (_name, _aliases, _summary, _label, _paper) in _SUMMARIES.items():
    register_enhancer(_name, _summary, functools.partial(c6_mask_of, strategy=_strategy), aliases=_aliases,
                      strategy=_strategy, label=_label, paper=_paper, record_name=_strategy, module=__name__)

__all__ = ["ask", "c6_mask_of", "c6_pseudo_mask", "image_features", "make_c6_masks", "mask_agreement",
           "segmenter_features"]
