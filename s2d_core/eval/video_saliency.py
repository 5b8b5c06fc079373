"""Video saliency metrics as the VSOD toolkits aggregate them, and a temporal warping error.

Per frame the metrics are :mod:`s2d_core.eval.saliency`'s (S-measure with alpha 0.5, F over 256
thresholds with beta^2 = 0.3, E-measure, MAE). Over a data set the field (DAVSOD toolbox,
PySODEvalToolkit) groups by **sequence**:

* the first and the last frame of every sequence are skipped (``skip_ends``; their annotations
  are often missing or unreliable);
* scalars (S, MAE, adaptive F and E) are averaged over a sequence's frames, then over sequences:
  :math:`\\bar m = \\frac{1}{|Q|} \\sum_{q \\in Q} \\frac{1}{|F_q|} \\sum_{f \\in F_q} m_f`;
* the F and E curves are averaged per sequence, then over sequences, and the maximum (and mean)
  is taken on that averaged curve: :math:`\\max_k \\frac{1}{|Q|} \\sum_q \\frac{1}{|F_q|} \\sum_f F_f(k)`.

A long sequence thus weighs as much as a short one (pysodmetrics pools all frames instead).

:func:`warping_error` measures temporal consistency: how much a prediction changes between
consecutive frames once the motion is compensated (Lai et al., ECCV 2018). Its trivial floor is
0, reached by any constant prediction (all zeros); report it beside that floor and beside the
ground truth's own warping error (which is not 0: occlusions and flow errors).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from numpy.typing import ArrayLike

from ..data.video import warp
from .saliency import SaliencyMeter

__all__ = ["VideoSaliencyMeter", "warping_error"]


class VideoSaliencyMeter:
    """Accumulate saliency metrics per sequence and aggregate them as the VSOD toolkits do.

    Parameters
    ----------
    skip_ends : skip the first and the last frame of every sequence (the toolkits' default).
    beta2, alpha : of the F-measure and the S-measure.
    """

    def __init__(self, skip_ends: bool = True, beta2: float = 0.3, alpha: float = 0.5) -> None:
        self.skip_ends, self.beta2, self.alpha = skip_ends, beta2, alpha
        self._sequences: dict[str, SaliencyMeter] = {}

    def update(self, sequence: str, preds: ArrayLike, gts: ArrayLike) -> None:
        """Add the frames of one sequence: ``preds`` (T, H, W) saliency in [0, 1] (or uint8), ``gts``
        (T, H, W) masks, the whole sequence at once (its first and last frame are skipped with
        ``skip_ends``, so a second call for the same sequence is refused)."""
        preds, gts = np.asarray(preds), np.asarray(gts)
        if preds.ndim != 3 or preds.shape != gts.shape:
            raise ValueError(f"sequence {sequence!r}: preds and gts must both be (T, H, W), got {preds.shape} and "
                             f"{gts.shape}")
        frames = range(1, len(preds) - 1) if self.skip_ends else range(len(preds))
        if self.skip_ends and len(preds) < 3:
            raise ValueError(f"sequence {sequence!r} has {len(preds)} frame(s): with skip_ends at least 3 are needed")
        if sequence in self._sequences:
            raise ValueError(f"sequence {sequence!r} was already added: pass each sequence whole, in one call")
        meter = self._sequences.setdefault(sequence, SaliencyMeter(beta2=self.beta2, alpha=self.alpha))
        for t in frames:
            meter.update(preds[t], gts[t])

    def __len__(self) -> int:
        return len(self._sequences)

    def per_sequence(self) -> dict[str, Dict[str, float]]:
        """Each sequence's metrics (means over its frames; curves' max over its own averaged curve)."""
        return {name: m.compute() for name, m in self._sequences.items()}

    def compute(self) -> Dict[str, float]:
        """``s_measure``, ``mae``, ``adp_f``, ``adp_e``: means over sequences of the per-sequence means;
        ``max_f``, ``mean_f``, ``max_e``, ``mean_e``: max and mean of the curve averaged per sequence,
        then over sequences; ``sequences`` and ``frames`` counted."""
        if not self._sequences:
            raise ValueError("VideoSaliencyMeter.compute() got no sequence: call update(name, preds, gts) first")
        meters = list(self._sequences.values())
        per = [m.compute() for m in meters]
        out = {k: float(np.mean([p[k] for p in per])) for k in ("s_measure", "mae", "adp_f", "adp_e")}
        curves = [m.curves() for m in meters]
        f, e = np.mean([c["f"] for c in curves], axis=0), np.mean([c["e"] for c in curves], axis=0)
        out.update(max_f=float(f.max()), mean_f=float(f.mean()), max_e=float(e.max()), mean_e=float(e.mean()),
                   sequences=len(meters), frames=int(sum(len(m) for m in meters)))
        return out


def warping_error(preds: ArrayLike, flows: ArrayLike, valid: ArrayLike | None = None) -> float:
    """Mean absolute change of a prediction between consecutive frames after motion compensation.

    .. math::  E = \\frac{1}{T - 1} \\sum_{t=1}^{T-1} \\operatorname{mean}_{x \\in V_t}
               \\big| p_t(x) - p_{t+1}(x + f_t(x)) \\big|

    ``preds``: (T, H, W) in [0, 1]; ``flows``: (T, 2, H, W) forward flow (dy, dx) from frame t to
    t + 1 (the last frame's is not used); ``valid``: optional (T, H, W) bool, the pixels to count
    (e.g. the non-occluded ones); all pixels when None. In [0, 1]; 0 for any constant prediction.
    """
    preds, flows = np.asarray(preds, np.float64), np.asarray(flows, np.float64)
    if preds.ndim != 3 or flows.shape != (preds.shape[0], 2, *preds.shape[1:]):
        raise ValueError(f"preds must be (T, H, W) and flows (T, 2, H, W), got {preds.shape} and {flows.shape}")
    if len(preds) < 2:
        raise ValueError(f"warping_error needs at least 2 frames, got {len(preds)}")
    errs = []
    for t in range(len(preds) - 1):
        d = np.abs(preds[t] - warp(preds[t + 1], flows[t]))
        if valid is not None:
            v = np.asarray(valid[t], bool)
            if not v.any():
                continue
            d = d[v]
        errs.append(float(d.mean()))
    return float(np.mean(errs)) if errs else float("nan")
