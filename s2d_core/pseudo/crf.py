"""Dense CRF refinement (Krähenbühl & Koltun, NeurIPS 2011), the classical baseline.

A fully connected CRF with Gaussian pairwise terms pulls labels toward image edges:

.. math:: E(x) = \\sum_i \\psi_u(x_i) + \\sum_{i<j} \\mu(x_i, x_j)\\Big[
          w_1 \\exp\\!\\big(-\\tfrac{|p_i-p_j|^2}{2\\theta_\\alpha^2} - \\tfrac{|I_i-I_j|^2}{2\\theta_\\beta^2}\\big)
          + w_2 \\exp\\!\\big(-\\tfrac{|p_i-p_j|^2}{2\\theta_\\gamma^2}\\big)\\Big]

with ``theta_alpha = sxy_bilateral``, ``theta_beta = srgb_bilateral``, ``w_1 = compat_bilateral``,
``theta_gamma = sxy_gaussian``, ``w_2 = compat_gaussian`` (:class:`~s2d_core.pseudo.config.CRFConfig`,
whose defaults are IRN's: 10 iterations, unary from labels with confidence 0.7, Gaussian
sxy 3 / compat 3, bilateral sxy 50 / srgb 5 / compat 10). Those were chosen for ~500 px VOC
images; on 64 px images a bilateral sxy of 50 spans the whole image (the chapter shows what
that does). Uses ``pydensecrf2`` (imported as ``pydensecrf``).
"""

from __future__ import annotations

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_labels

from ..arrays import to_numpy, to_uint8
from .config import CRFConfig

__all__ = ["crf_labels", "crf_probs"]


def _crf(img: np.ndarray, unary: np.ndarray, n_labels: int, cfg: CRFConfig) -> np.ndarray:

    h, w = img.shape[:2]
    d = dcrf.DenseCRF2D(w, h, n_labels)
    d.setUnaryEnergy(np.ascontiguousarray(unary.astype(np.float32)))
    d.addPairwiseGaussian(sxy=cfg.sxy_gaussian, compat=cfg.compat_gaussian)
    d.addPairwiseBilateral(sxy=cfg.sxy_bilateral, srgb=cfg.srgb_bilateral, rgbim=img, compat=cfg.compat_bilateral)
    q = np.array(d.inference(cfg.iterations)).reshape(n_labels, h, w)
    return q


def crf_labels(image, labels, cfg: CRFConfig = CRFConfig()) -> np.ndarray:
    """Refine a label map with a dense CRF whose unary trusts each label with ``cfg.gt_prob``.

    Parameters
    ----------
    image : (3, H, W) float in [0, 1] or (H, W, 3) uint8.
    labels : (H, W) integer labels; the CRF only chooses among the labels present in the map,
        so 255 is treated as one more label. (IRN offers background plus *all* the image's
        tags; here a tagged class absent from the map cannot reappear. With threshold seeds
        every tagged class with a CAM peak above the threshold is present, so the two rarely
        differ.)

    Returns
    -------
    (H, W) labels of the same dtype, each pixel one of the input's labels.
    """
    img = to_uint8(image)
    lab = to_numpy(labels)
    if lab.shape != img.shape[:2]:
        raise ValueError(f"labels shape {lab.shape} must match the image's (H, W) {img.shape[:2]}")
    keys, compact = np.unique(lab, return_inverse=True)
    if keys.size == 1:  # nothing to decide
        return lab.copy()
    # pydensecrf's unary_from_labels treats label 0 as "unsure" only if zero_unsure=True
    unary = unary_from_labels(compact.reshape(lab.shape), keys.size, gt_prob=cfg.gt_prob, zero_unsure=False)
    q = _crf(img, unary, keys.size, cfg)
    return keys[q.argmax(0)].astype(lab.dtype)


def crf_probs(image, probs, cfg: CRFConfig = CRFConfig()) -> np.ndarray:
    """Dense CRF from class probabilities ``probs`` (K, H, W) (summing to 1 over K);
    returns the refined probabilities (K, H, W)."""
    img = to_uint8(image)
    p = to_numpy(probs).astype(np.float64, copy=False)
    if p.ndim != 3 or p.shape[1:] != img.shape[:2]:
        raise ValueError(f"probs must have shape (K, {img.shape[0]}, {img.shape[1]}), got {p.shape}")
    unary = -np.log(np.clip(p, 1e-8, 1.0)).reshape(p.shape[0], -1)
    return _crf(img, unary, p.shape[0], cfg)
