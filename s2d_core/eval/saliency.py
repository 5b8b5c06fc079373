"""Salient-object-detection metrics: MAE, F-measure, S-measure and E-measure.

These are the four numbers every saliency / video-object paper reports. They are
written here from the papers' definitions as small NumPy functions, with the
input conventions of the widely used ``pysodmetrics`` package (imported as
``py_sod_metrics``) so that our numbers can be compared with published tables.

Input convention (shared by every function)
-------------------------------------------
``pred`` : (H, W) saliency map
    * floating point: values must lie in ``[0, 1]``;
    * integer (typically ``uint8``): grey levels in ``[0, 255]``, divided by 255;
    * ``bool``: read as 0 / 1.

    The map is then min-max normalised to span ``[0, 1]`` exactly, unless it is
    constant (a constant map is kept as it is). This mirrors MATLAB's
    ``mapminmax(im2double(.))`` used by the original benchmark code, and makes
    the metrics invariant to the scale and offset of the detector's output.

``gt`` : (H, W) ground-truth mask
    * ``bool``: used as it is;
    * numeric with maximum ``<= 1`` (a 0 / 1 mask): foreground where ``> 0.5``;
    * numeric with maximum ``> 1`` (an 8-bit mask, 0 / 255, possibly
      anti-aliased): foreground where ``> 128``, as in ``pysodmetrics``.

Threshold sweeps
----------------
The curves (F-measure and E-measure) binarise the normalised map at 256 levels.
Following the reference implementation, the map is first quantised to
``q = floor(255 * p)`` and the binary map at level ``k`` is ``q >= k``.
Index ``k`` of every returned curve is therefore the threshold ``k`` (ascending);
``pysodmetrics`` stores the same values in the reverse order (index 0 is level
255). The adaptive variants instead threshold the *unquantised* map at
``min(2 * mean(p), 1)`` (Achanta et al., CVPR 2009).

Dataset protocol
----------------
:class:`SaliencyMeter` averages the per-image scalars (MAE, adaptive F and E,
S-measure) over images. For the curves it averages the per-image curves over
images first and only then takes the maximum and the mean over the 256
thresholds, which is how ``max_f``, ``mean_f``, ``max_e`` and ``mean_e`` are
reported in the literature.

Known deliberate difference
---------------------------
When the centroid of the ground truth falls on the last row or column, the
S-measure region split leaves two quadrants empty. Their weight is zero, so we
drop them; ``pysodmetrics`` returns ``nan`` there (0 * mean of an empty array).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "N_THRESHOLDS",
    "mae",
    "fmeasure_curve",
    "adaptive_fmeasure",
    "smeasure",
    "emeasure_curve",
    "adaptive_emeasure",
    "SaliencyMeter",
]

#: Number of binarisation thresholds in the F- and E-measure curves.
N_THRESHOLDS: int = 256

# MATLAB's ``eps`` (2**-52). The authors' reference code adds it to the
# denominators of the S- and E-measure; keeping the same constant keeps our
# numbers identical in degenerate cases where a denominator is almost zero.
_EPS: float = float(np.spacing(1.0))


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #
def _check_2d(name: str, arr: np.ndarray) -> None:
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D (H, W) array, got shape {arr.shape}"
        )


def _prepare(pred: ArrayLike, gt: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Validate and normalise one (pred, gt) pair.

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Float in [0, 1], integer grey levels in [0, 255], or bool.
    gt : array_like, shape (H, W)
        Bool, 0/1 mask, or 8-bit mask in [0, 255].

    Returns
    -------
    p : np.ndarray, shape (H, W), float64 in [0, 1]
        Min-max normalised prediction (left untouched when constant).
    g : np.ndarray, shape (H, W), bool
        Binary ground truth.

    Raises
    ------
    ValueError
        Non-2-D or empty input, shape mismatch, or values out of range.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    _check_2d("pred", pred)
    _check_2d("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred and gt must have the same (H, W) shape, got pred {pred.shape} "
            f"and gt {gt.shape}"
        )

    if pred.dtype == bool:
        p = pred.astype(np.float64)
    elif np.issubdtype(pred.dtype, np.integer):
        lo, hi = pred.min(), pred.max()
        if lo < 0 or hi > 255:
            raise ValueError(
                f"pred is an integer array of shape {pred.shape}, so it must hold "
                f"grey levels in [0, 255]; got values in [{lo}, {hi}]"
            )
        p = pred / 255.0
    elif np.issubdtype(pred.dtype, np.floating):
        p = pred.astype(np.float64)
        lo, hi = p.min(), p.max()
        # ``not (lo >= 0)`` also catches NaN, which compares False to everything.
        if not (lo >= 0.0 and hi <= 1.0):
            raise ValueError(
                f"pred is a floating-point array of shape {pred.shape}, so its values "
                f"must lie in [0, 1]; got values in [{lo}, {hi}]"
            )
    else:
        raise ValueError(
            f"pred of shape {pred.shape} has dtype {pred.dtype}; expected a float, "
            f"integer or bool array"
        )

    lo, hi = p.min(), p.max()
    if hi != lo:
        p = (p - lo) / (hi - lo)

    if gt.dtype == bool:
        g = gt
    elif np.issubdtype(gt.dtype, np.number) and not np.issubdtype(gt.dtype, np.complexfloating):
        lo, hi = gt.min(), gt.max()
        if not (lo >= 0 and hi <= 255):
            raise ValueError(
                f"gt of shape {gt.shape} must be a bool mask, a 0/1 mask or an "
                f"8-bit mask in [0, 255]; got values in [{lo}, {hi}]"
            )
        # A 0/1 mask and an 8-bit mask are told apart by their maximum; 128 is
        # the cut the reference uses for anti-aliased 8-bit annotations.
        g = gt > 0.5 if hi <= 1 else gt > 128
    else:
        raise ValueError(
            f"gt of shape {gt.shape} has dtype {gt.dtype}; expected a bool or "
            f"numeric mask"
        )
    return p, g


def _adaptive_threshold(p: np.ndarray) -> float:
    return min(2.0 * float(p.mean()), 1.0)


def _counts_per_threshold(p: np.ndarray, g: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Foreground / background pixel counts with ``floor(255 p) >= k``, k = 0..255."""
    # astype truncates, i.e. floors the non-negative values, as the reference does.
    levels = (p * 255).astype(np.uint8)
    fg_hist = np.bincount(levels[g], minlength=N_THRESHOLDS)
    bg_hist = np.bincount(levels[~g], minlength=N_THRESHOLDS)
    # Reverse cumulative sums turn "pixels at level k" into "pixels at level >= k".
    tp = np.cumsum(fg_hist[::-1])[::-1]
    fp = np.cumsum(bg_hist[::-1])[::-1]
    return tp, fp


# --------------------------------------------------------------------------- #
# MAE
# --------------------------------------------------------------------------- #
def _mae(p: np.ndarray, g: np.ndarray) -> float:
    return float(np.mean(np.abs(p - g)))


def mae(pred: ArrayLike, gt: ArrayLike) -> float:
    r"""Mean absolute error between a saliency map and its mask.

    .. math:: \mathrm{MAE} = \frac{1}{WH} \sum_{x,y} |S(x, y) - G(x, y)|

    (Perazzi et al., "Saliency filters", CVPR 2012.)

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.

    Returns
    -------
    float
        MAE in [0, 1]; lower is better.
    """
    return _mae(*_prepare(pred, gt))


# --------------------------------------------------------------------------- #
# F-measure
# --------------------------------------------------------------------------- #
def _f_beta(precision, recall, beta2: float):
    num = (1 + beta2) * precision * recall
    den = beta2 * precision + recall
    # F is defined as 0 when precision or recall is 0 (num == 0 covers both,
    # including the 0/0 case when nothing is predicted or nothing is true).
    return np.where(num == 0, 0.0, num / np.where(num == 0, 1.0, den))


def _fmeasure_curve(
    p: np.ndarray, g: np.ndarray, beta2: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp, fp = _counts_per_threshold(p, g)
    predicted = tp + fp
    # With nothing predicted TP is 0 too; precision 0 is the reference's choice.
    precision = tp / np.maximum(predicted, 1)
    recall = tp / max(int(np.count_nonzero(g)), 1)
    return precision, recall, _f_beta(precision, recall, beta2)


def fmeasure_curve(
    pred: ArrayLike, gt: ArrayLike, beta2: float = 0.3
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Precision, recall and F-measure at the 256 thresholds.

    At threshold :math:`k` the binary map is :math:`M_k = [\lfloor 255 p\rfloor \ge k]`
    and

    .. math::
        P_k = \frac{|M_k \cap G|}{|M_k|}, \quad
        R_k = \frac{|M_k \cap G|}{|G|}, \quad
        F_k = \frac{(1 + \beta^2) P_k R_k}{\beta^2 P_k + R_k}

    (Achanta et al., "Frequency-tuned salient region detection", CVPR 2009;
    :math:`\beta^2 = 0.3` weights precision more than recall.) Empty
    denominators give 0: :math:`P_k = 0` when :math:`M_k` is empty,
    :math:`R_k = 0` when :math:`G` is empty, :math:`F_k = 0` when
    :math:`P_k R_k = 0`.

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.
    beta2 : float, default 0.3
        The squared :math:`\beta` of the F-measure.

    Returns
    -------
    precision, recall, f : np.ndarray, each shape (256,), float64 in [0, 1]
        Index ``k`` is threshold level ``k`` (ascending).
    """
    p, g = _prepare(pred, gt)
    return _fmeasure_curve(p, g, beta2)


def _adaptive_fmeasure(p: np.ndarray, g: np.ndarray, beta2: float) -> float:
    m = p >= _adaptive_threshold(p)
    tp = int(np.count_nonzero(m & g))
    if tp == 0:
        return 0.0
    precision = tp / int(np.count_nonzero(m))
    recall = tp / int(np.count_nonzero(g))
    return float((1 + beta2) * precision * recall / (beta2 * precision + recall))


def adaptive_fmeasure(pred: ArrayLike, gt: ArrayLike, beta2: float = 0.3) -> float:
    r"""F-measure at the image-adaptive threshold.

    The map is binarised as :math:`M = [p \ge T_a]` with

    .. math:: T_a = \min\Big(\frac{2}{WH} \sum_{x,y} p(x, y),\; 1\Big)

    (Achanta et al., CVPR 2009), then
    :math:`F = (1 + \beta^2) P R / (\beta^2 P + R)` as in :func:`fmeasure_curve`;
    :math:`F = 0` when :math:`M` and :math:`G` do not overlap.

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.
    beta2 : float, default 0.3
        The squared :math:`\beta` of the F-measure.

    Returns
    -------
    float
        Adaptive F-measure in [0, 1]; higher is better.
    """
    p, g = _prepare(pred, gt)
    return _adaptive_fmeasure(p, g, beta2)


# --------------------------------------------------------------------------- #
# S-measure
# --------------------------------------------------------------------------- #
def _object_similarity(values: np.ndarray) -> float:
    mean = float(values.mean())
    # MATLAB's std normalises by n - 1; a single pixel has no spread.
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return 2.0 * mean / (mean * mean + 1.0 + std + _EPS)


def _ssim(x: np.ndarray, y: np.ndarray) -> float:
    n = x.size
    mx, my = x.mean(), y.mean()
    dx, dy = x - mx, y - my
    # Unbiased (n - 1) moments as in the reference; a 1-pixel quadrant has
    # zero sums anyway, so the guard only avoids 0 / 0.
    dof = max(n - 1, 1)
    var_x = np.sum(dx * dx) / dof
    var_y = np.sum(dy * dy) / dof
    cov_xy = np.sum(dx * dy) / dof
    num = 4.0 * mx * my * cov_xy
    den = (mx * mx + my * my) * (var_x + var_y)
    # den == 0 means both quadrants are constant (or both all-zero): a perfect
    # structural match by convention. den > 0 with num == 0 gives 0 below.
    if num == 0 and den == 0:
        return 1.0
    return float(num / (den + _EPS))


def _smeasure(p: np.ndarray, g: np.ndarray, alpha: float) -> float:
    fg_ratio = float(g.mean())
    # Without one of the two classes the structure terms are undefined; the
    # paper scores such maps by how dark (empty gt) or bright (full gt) they are.
    if fg_ratio == 0.0:
        return 1.0 - float(p.mean())
    if fg_ratio == 1.0:
        return float(p.mean())

    s_object = fg_ratio * _object_similarity(p[g]) + (1.0 - fg_ratio) * _object_similarity(
        1.0 - p[~g]
    )

    h, w = g.shape
    rows, cols = np.nonzero(g)
    # np.rint rounds halves to even like the Python reference (MATLAB rounds
    # them away from zero); the +1 reproduces MATLAB's inclusive 1:X split.
    cy = int(np.rint(rows.mean())) + 1
    cx = int(np.rint(cols.mean())) + 1
    s_region = 0.0
    for rs in (slice(0, cy), slice(cy, h)):
        for cs in (slice(0, cx), slice(cx, w)):
            pq, gq = p[rs, cs], g[rs, cs]
            if pq.size == 0:  # zero weight; skipping avoids mean-of-empty NaNs
                continue
            s_region += pq.size / (h * w) * _ssim(pq, gq.astype(np.float64))

    s = alpha * s_object + (1.0 - alpha) * s_region
    return s if np.isnan(s) else max(0.0, s)  # a NaN stays visible (max(0.0, nan) would be 0.0)


def smeasure(pred: ArrayLike, gt: ArrayLike, alpha: float = 0.5) -> float:
    r"""Structure measure (Fan et al., "Structure-measure", ICCV 2017).

    .. math:: S = \alpha S_o + (1 - \alpha) S_r

    *Object-aware* term, with :math:`\mu` the foreground fraction of the mask:

    .. math::
        S_o = \mu O_{FG} + (1 - \mu) O_{BG}, \qquad
        O = \frac{2 \bar{x}}{\bar{x}^2 + 1 + 2 \lambda \sigma_x}, \ \lambda = 0.5

    where :math:`O_{FG}` uses the prediction inside the mask and :math:`O_{BG}`
    uses :math:`1 - p` outside it (:math:`\sigma_x`: sample standard deviation).

    *Region-aware* term: the image is split into four quadrants at the mask
    centroid, weighted by their area fraction :math:`w_k`, each compared with

    .. math::
        S_r = \sum_k w_k\, \mathrm{ssim}_k, \qquad
        \mathrm{ssim} = \frac{4 \bar{x} \bar{y} \sigma_{xy}}
                             {(\bar{x}^2 + \bar{y}^2)(\sigma_x^2 + \sigma_y^2)}

    (ssim := 1 when numerator and denominator are both 0). Special cases from
    the paper: :math:`S = 1 - \bar{p}` for an empty mask and :math:`S = \bar{p}`
    for a full one. The result is clipped below at 0.

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.
    alpha : float, default 0.5
        Weight of the object-aware term.

    Returns
    -------
    float
        S-measure in [0, 1]; higher is better.
    """
    p, g = _prepare(pred, gt)
    return _smeasure(p, g, alpha)


# --------------------------------------------------------------------------- #
# E-measure
# --------------------------------------------------------------------------- #
def _emeasure_from_counts(tp, fp, n_fg: int, n: int):
    """E-measure of binary maps given TP / FP counts (scalars or arrays).

    A binary map and a binary mask take only two values each, so the enhanced
    alignment matrix takes only four values (TP, FP, FN, TN pixels): the whole
    map sum is a weighted sum of four numbers, with no per-pixel work.
    """
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    predicted = tp + fp
    if n_fg == 0:
        # The reference code scores an empty mask by the predicted background.
        total = n - predicted
    elif n_fg == n:
        total = predicted
    else:
        fn = n_fg - tp
        tn = (n - n_fg) - fp
        mu_pred = predicted / n
        mu_gt = n_fg / n

        def enhanced(a, b):
            xi = 2.0 * a * b / (a * a + b * b + _EPS)
            return (1.0 + xi) ** 2 / 4.0

        total = (
            tp * enhanced(1.0 - mu_pred, 1.0 - mu_gt)
            + fp * enhanced(1.0 - mu_pred, -mu_gt)
            + fn * enhanced(-mu_pred, 1.0 - mu_gt)
            + tn * enhanced(-mu_pred, -mu_gt)
        )
    # (n - 1) rather than n follows the authors' MATLAB code.
    return total / (n - 1 + _EPS)


def _emeasure_curve(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    tp, fp = _counts_per_threshold(p, g)
    return _emeasure_from_counts(tp, fp, int(np.count_nonzero(g)), g.size)


def emeasure_curve(pred: ArrayLike, gt: ArrayLike) -> np.ndarray:
    r"""Enhanced-alignment measure at the 256 thresholds.

    For a binary map :math:`M_k = [\lfloor 255 p \rfloor \ge k]` and mask
    :math:`G` (Fan et al., "Enhanced-alignment measure", IJCAI 2018):

    .. math::
        \varphi_I = I - \mu_I, \qquad
        \xi = \frac{2\, \varphi_G \circ \varphi_M}
                   {\varphi_G \circ \varphi_G + \varphi_M \circ \varphi_M}, \qquad
        E_k = \frac{1}{WH - 1} \sum_{x,y} \frac{(1 + \xi(x, y))^2}{4}

    (:math:`WH - 1` as in the authors' code). For an empty mask the enhanced
    matrix is :math:`1 - M_k`, for a full mask it is :math:`M_k`.

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.

    Returns
    -------
    np.ndarray, shape (256,), float64
        Index ``k`` is threshold level ``k`` (ascending). Values lie in
        [0, WH / (WH - 1)], i.e. essentially [0, 1]; higher is better.
    """
    p, g = _prepare(pred, gt)
    return _emeasure_curve(p, g)


def _adaptive_emeasure(p: np.ndarray, g: np.ndarray) -> float:
    m = p >= _adaptive_threshold(p)
    tp = int(np.count_nonzero(m & g))
    fp = int(np.count_nonzero(m & ~g))
    return float(_emeasure_from_counts(tp, fp, int(np.count_nonzero(g)), g.size))


def adaptive_emeasure(pred: ArrayLike, gt: ArrayLike) -> float:
    r"""E-measure at the image-adaptive threshold.

    Binarises with :math:`M = [p \ge \min(2 \bar{p}, 1)]` and evaluates the
    E-measure of :func:`emeasure_curve` on :math:`M`:

    .. math:: E = \frac{1}{WH - 1} \sum_{x,y} \frac{(1 + \xi(x, y))^2}{4}

    Parameters
    ----------
    pred : array_like, shape (H, W)
        Saliency map (see the module docstring for accepted dtypes).
    gt : array_like, shape (H, W)
        Ground-truth mask.

    Returns
    -------
    float
        Adaptive E-measure, essentially in [0, 1]; higher is better.
    """
    p, g = _prepare(pred, gt)
    return _adaptive_emeasure(p, g)


# --------------------------------------------------------------------------- #
# Dataset accumulator
# --------------------------------------------------------------------------- #
class SaliencyMeter:
    """Accumulate the saliency metrics over a dataset, one image at a time.

    Parameters
    ----------
    beta2 : float, default 0.3
        Squared beta of the F-measure.
    alpha : float, default 0.5
        Object / region balance of the S-measure.

    Examples
    --------
    >>> import numpy as np
    >>> meter = SaliencyMeter()
    >>> gt = np.zeros((8, 8), dtype=bool); gt[2:6, 2:6] = True
    >>> meter.update(gt.astype(np.float64), gt)
    >>> round(meter.compute()["mae"], 6)
    0.0
    """

    def __init__(self, beta2: float = 0.3, alpha: float = 0.5) -> None:
        self.beta2 = beta2
        self.alpha = alpha
        self._n = 0
        self._scalars = {"mae": 0.0, "adp_f": 0.0, "s_measure": 0.0, "adp_e": 0.0}
        self._f_curve = np.zeros(N_THRESHOLDS, dtype=np.float64)
        self._e_curve = np.zeros(N_THRESHOLDS, dtype=np.float64)

    def __len__(self) -> int:
        """Number of images accumulated so far."""
        return self._n

    def update(self, pred: ArrayLike, gt: ArrayLike) -> None:
        """Add one image.

        Parameters
        ----------
        pred : array_like, shape (H, W)
            Saliency map (see the module docstring for accepted dtypes).
        gt : array_like, shape (H, W)
            Ground-truth mask. Images may differ in size from one call to the next.
        """
        p, g = _prepare(pred, gt)
        self._scalars["mae"] += _mae(p, g)
        self._scalars["adp_f"] += _adaptive_fmeasure(p, g, self.beta2)
        self._scalars["s_measure"] += _smeasure(p, g, self.alpha)
        self._scalars["adp_e"] += _adaptive_emeasure(p, g)
        self._f_curve += _fmeasure_curve(p, g, self.beta2)[2]
        self._e_curve += _emeasure_curve(p, g)
        self._n += 1

    def curves(self) -> Dict[str, np.ndarray]:
        """The F and E curves averaged over the images so far: ``{"f": (256,), "e": (256,)}``
        (index k = threshold k)."""
        if self._n == 0:
            raise ValueError("SaliencyMeter.curves() got no images: call update(pred, gt) first")
        return {"f": self._f_curve / self._n, "e": self._e_curve / self._n}

    def compute(self) -> Dict[str, float]:
        """Dataset-level metrics.

        Returns
        -------
        dict of str to float
            ``mae``, ``adp_f``, ``s_measure``, ``adp_e``: means of the per-image
            values. ``max_f``, ``mean_f``, ``max_e``, ``mean_e``: maximum and mean
            over the 256 thresholds of the per-threshold curve averaged over images.

        Raises
        ------
        ValueError
            If no image has been added yet.
        """
        if self._n == 0:
            raise ValueError(
                "SaliencyMeter.compute() got no images: update(pred, gt) was never "
                "called; expected at least one (H, W) pred / gt pair"
            )
        n = self._n
        f_curve = self._f_curve / n
        e_curve = self._e_curve / n
        return {
            "mae": self._scalars["mae"] / n,
            "max_f": float(f_curve.max()),
            "mean_f": float(f_curve.mean()),
            "adp_f": self._scalars["adp_f"] / n,
            "s_measure": self._scalars["s_measure"] / n,
            "max_e": float(e_curve.max()),
            "mean_e": float(e_curve.mean()),
            "adp_e": self._scalars["adp_e"] / n,
        }
