"""Is a claimed improvement real? A paired difference of two rows of results over seeds.

A claim "method A beats baseline B" is measured on the seeds both were run with:

.. math::  \\Delta = \\frac{1}{|S|} \\sum_{s \\in S} \\big(m_A(s) - m_B(s)\\big)

It is **real** when its absolute value exceeds both seed spreads, :math:`|\\Delta| > \\max(\\sigma_A, \\sigma_B)` (each row's sample standard
deviation over :math:`S`) with at least three seeds, and it **holds** when it is real, positive
and at least the size expected beforehand. Over two regimes (e.g. from scratch and pre-trained)
a claim is *replicated* when it holds in both, *not replicated* in neither, *mixed* otherwise.
The benchmark page "What replicates" (``python -m benchmarks.replicates``) applies these to
every claim of the book.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["MIN_SEEDS", "holds", "paired_difference", "verdict"]

MIN_SEEDS = 3
"""Fewer seeds than this never make a difference real."""


def _sd(x: pd.Series) -> float:
    v = x.tolist()
    if len(v) < 2:
        return math.nan
    m = sum(v) / len(v)
    return math.sqrt(sum((e - m) ** 2 for e in v) / (len(v) - 1))


def paired_difference(a: pd.Series, b: pd.Series, scale: float = 100.0) -> dict:
    """``a - b`` over the seeds both have.

    Parameters
    ----------
    a, b : per-seed values indexed by seed (e.g. seed mIoU as fractions in [0, 1]).
    scale : multiplies the values first (100: fractions -> mIoU points).

    Returns
    -------
    ``{"n", "delta", "a", "b", "sd_a", "sd_b", "real"}``: the number of shared seeds, the mean
    difference, each row's mean and sample std over those seeds (NaN below two), and whether
    ``|delta| > max(sd_a, sd_b)`` with at least :data:`MIN_SEEDS` seeds.
    """
    if not isinstance(a, pd.Series) or not isinstance(b, pd.Series):
        raise TypeError(f"a and b must be pandas Series indexed by seed, got {type(a).__name__}, {type(b).__name__}")
    seeds = a.index.intersection(b.index)
    n = len(seeds)
    if n == 0:
        return {"n": 0, "delta": math.nan, "a": math.nan, "b": math.nan, "sd_a": math.nan, "sd_b": math.nan,
                "real": False}
    a, b = scale * a.loc[seeds].astype(float), scale * b.loc[seeds].astype(float)
    sd_a, sd_b = _sd(a), _sd(b)
    delta = float((a - b).mean())
    real = n >= MIN_SEEDS and abs(delta) > max(sd_a, sd_b)
    return {"n": n, "delta": delta, "a": float(a.mean()), "b": float(b.mean()), "sd_a": sd_a, "sd_b": sd_b,
            "real": bool(real)}


def holds(m: dict, expect: float) -> bool | None:
    """Whether a :func:`paired_difference` ``m`` holds: real, positive and at least ``expect``
    (same units); None when it cannot be judged (fewer than :data:`MIN_SEEDS` shared seeds)."""
    if m["n"] < MIN_SEEDS:
        return None
    return bool(m["real"] and m["delta"] > 0 and m["delta"] >= expect)


def verdict(scratch: bool | None, pretrained: bool | None) -> str:
    """Over the two regimes: ``"replicated"`` (holds in both), ``"not replicated"`` (in neither),
    ``"mixed"``, or ``"pending (...)"`` while a regime cannot be judged yet (what the other shows is named)."""
    if scratch is None and pretrained is None:
        return "pending"
    if scratch is None or pretrained is None:
        known, value = ("from scratch", scratch) if pretrained is None else ("pre-trained", pretrained)
        return f"pending ({'holds' if value else 'does not hold'} {known})"
    if scratch and pretrained:
        return "replicated"
    if not scratch and not pretrained:
        return "not replicated"
    return "mixed"
