r"""Entropic optimal transport: a batched, log-domain Sinkhorn solver in PyTorch.

Optimal transport (OT) moves the mass of a distribution :math:`a` (N points, e.g. the pixels
of an image) onto a distribution :math:`b` (M points, e.g. class prototypes) at the least
total cost :math:`\sum_{ij} P_{ij} C_{ij}`, where the plan :math:`P` must have row sums
:math:`a` and column sums :math:`b`. Entropic OT (Cuturi, "Sinkhorn Distances: Lightspeed
Computation of Optimal Transport", NeurIPS 2013) adds :math:`-\varepsilon H(P)` to the cost.
The optimum then has the form :math:`P_{ij} = \exp((f_i + g_j - C_{ij}) / \varepsilon)`, and
Sinkhorn's algorithm finds the dual potentials :math:`f, g` by alternately fitting the
column sums to :math:`b` and the row sums to :math:`a`. Small :math:`\varepsilon` gives a
sharp, nearly hard assignment; large :math:`\varepsilon` a blurred one.

The textbook iteration works with the kernel :math:`K = \exp(-C/\varepsilon)`, which
underflows to zero once :math:`C/\varepsilon` exceeds about 745 (float64) or 87 (float32), so
small :math:`\varepsilon` breaks it (division by zero, NaN). This module iterates on the
potentials themselves with log-sum-exp ("log-domain stabilisation": Schmitzer, "Stabilized
Sparse Scaling Algorithms for Entropy Regularized Transport Problems", SIAM J. Sci. Comput.
2019; Peyré & Cuturi, "Computational Optimal Transport", 2019, section 4.4), which stays
finite for any :math:`\varepsilon > 0`.

The iteration and its stopping rule follow POT's ``ot.bregman.sinkhorn_log`` (update the column
potential, then the row potential; test the column marginal after iterations 1, 11, 21, ...),
so that a tolerance means the same thing in both and the tests can use POT as a reference.
Unlike POT, it solves a whole batch of problems at once, on CPU or GPU, and is differentiable.

    >>> cost = cosine_cost(features, prototypes)          # (B, N, M)
    >>> plan = sinkhorn(cost, epsilon=0.05)               # (B, N, M), rows sum to 1/N
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["cosine_cost", "sinkhorn"]

_DTYPES = (torch.float32, torch.float64)

# Largest cost range / epsilon for which the log-sum-exps are computed with a shifted kernel
# (see `sinkhorn`): terms lost to underflow are then below tiny * exp(R) relative to the sum
# (about 1e-45 for float64 at 600, 1e-16 for float32 at 50), i.e. far below rounding.
_MAX_SHIFTED_RANGE = {torch.float64: 600.0, torch.float32: 50.0}


def cosine_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Cosine cost :math:`C_{ij} = 1 - \cos(x_i, y_j)` between two sets of vectors.

    Parameters
    ----------
    x : torch.Tensor, shape (..., N, D)
        First set (e.g. pixel features).
    y : torch.Tensor, shape (..., M, D)
        Second set (e.g. prototypes). Leading dimensions broadcast against those of ``x``.

    Returns
    -------
    torch.Tensor, shape (..., N, M)
        :math:`C_{ij} = 1 - \langle x_i, y_j \rangle / (\lVert x_i \rVert \lVert y_j \rVert)`,
        dimensionless, in :math:`[0, 2]`: 0 for parallel vectors, 1 for orthogonal ones, 2 for
        opposite ones. A zero vector has cosine 0 with everything (cost 1).
    """
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(f"cosine_cost expects x of shape (..., N, D) and y of shape (..., M, D), "
                         f"got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"cosine_cost: feature dimensions differ: x {tuple(x.shape)} has D={x.shape[-1]}, "
                         f"y {tuple(y.shape)} has D={y.shape[-1]}")
    cos = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(-1, -2)
    # Rounding can push |cos| a hair above 1; the cost is promised to lie in [0, 2].
    return (1.0 - cos).clamp(0.0, 2.0)


def _marginal(w: Any, name: str, n: int, batch: int | None, cost: torch.Tensor) -> torch.Tensor:
    """Check one marginal and return it as a (B, n) tensor on ``cost``'s device and dtype."""
    if w is None:
        return cost.new_full((batch or 1, n), 1.0 / n)
    w = torch.as_tensor(w, device=cost.device, dtype=cost.dtype)
    dims = "N" if name == "a" else "M"
    expected = f"({n},)" if batch is None else f"({n},) or ({batch}, {n})"
    if w.shape == (n,):
        w = w.expand(batch or 1, n)
    elif batch is None or w.shape != (batch, n):
        raise ValueError(f"marginal {name} must have shape {expected} (cost has {dims}={n}"
                         f"{'' if batch is None else f', B={batch}'}), got {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError(f"marginal {name} must be finite")
    if (w < 0).any():
        raise ValueError(f"marginal {name} must be non-negative, got a minimum of {w.min().item():.3g}")
    if (w.sum(-1) <= 0).any():
        raise ValueError(f"marginal {name} must have a positive total mass in every problem")
    return w


def _safe_log(w: torch.Tensor) -> torch.Tensor:
    # log 0 = -inf is what we want (the row/column then gets exactly zero mass); the clamp
    # only keeps the unused branch of `where` from producing inf * 0 = NaN in a backward pass.
    tiny = torch.finfo(w.dtype).tiny
    return torch.where(w > 0, w.clamp_min(tiny).log(), torch.full_like(w, -math.inf))


def sinkhorn(
    cost: torch.Tensor,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    epsilon: float = 0.05,
    n_iters: int | None = None,
    tol: float = 1e-6,
    max_iters: int = 1000,
    check_every: int = 10,
    return_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    r"""Entropic optimal transport plans of one or a batch of problems (log-domain Sinkhorn).

    Solves, independently for every problem in the batch,

    .. math::

        P^\star = \arg\min_{P \ge 0,\; P \mathbf{1} = a,\; P^\top \mathbf{1} = b}
                  \sum_{ij} P_{ij} C_{ij} + \varepsilon \sum_{ij} P_{ij} (\log P_{ij} - 1),

    whose solution is :math:`P_{ij} = \exp((f_i + g_j - C_{ij}) / \varepsilon)`. Starting from
    :math:`f = g = 0`, each iteration updates the column potential, then the row potential:

    .. math::

        g_j &\leftarrow \varepsilon \log b_j - \varepsilon \log \sum_i \exp((f_i - C_{ij}) / \varepsilon), \\
        f_i &\leftarrow \varepsilon \log a_i - \varepsilon \log \sum_j \exp((g_j - C_{ij}) / \varepsilon),

    with log-sum-exp, so nothing under- or overflows however small :math:`\varepsilon` is. After
    each iteration the rows of :math:`P` sum exactly to :math:`a`; convergence is measured on the
    columns, :math:`\mathrm{err} = \lVert P^\top \mathbf{1} - b \rVert_2`. This is the iteration of
    POT's ``ot.bregman.sinkhorn_log`` (which works with :math:`f/\varepsilon, g/\varepsilon`) and
    the same stopping rule, so a given ``tol`` means the same thing in both.

    Parameters
    ----------
    cost : torch.Tensor, shape (N, M) or (B, N, M)
        Cost matrices :math:`C`, finite, float32 or float64, on any device. Everything is
        computed in this dtype and on this device. Units are arbitrary but must match
        ``epsilon``'s (for :func:`cosine_cost`, dimensionless in [0, 2]).
    a : torch.Tensor or array-like, shape (N,) or (B, N), optional
        Row marginals (mass of each source point), non-negative. ``None``: uniform, :math:`1/N`.
        A (N,) vector is shared by all problems of a batch.
    b : torch.Tensor or array-like, shape (M,) or (B, M), optional
        Column marginals, non-negative. ``None``: uniform, :math:`1/M`. In every problem
        ``a`` and ``b`` must have the same total mass (within 1e-6, relative). Zero entries are
        allowed: their rows (columns) of the plan are exactly zero.
    epsilon : float
        Entropic regularisation :math:`\varepsilon > 0`, in the units of ``cost``.
    n_iters : int, optional
        If given, run exactly this many iterations and never test convergence (cheapest;
        fixed cost; what one wants inside a training step).
    tol : float
        Otherwise stop when every problem has :math:`\mathrm{err} <` ``tol`` (units of mass).
        A problem that has converged is frozen while the others continue, so each plan is the
        one the problem would get when solved alone.
    max_iters : int
        Give up after this many iterations, with a :class:`UserWarning` giving the largest error.
    check_every : int
        Test convergence after iterations 1, 1 + ``check_every``, 1 + 2 ``check_every``, ...
        (each test costs about half an iteration). POT uses 10.
    return_info : bool
        Also return a dict with ``"n_iters"`` (int, iterations run), ``"err"`` (tensor of shape
        (B,), or () for a single (N, M) problem: final column-marginal error of each problem),
        ``"f"`` and ``"g"`` (dual potentials, shapes like ``a`` and ``b`` with a leading B
        for a batch, units of ``cost``; :math:`-\infty` where the marginal is zero).

    Returns
    -------
    plan : torch.Tensor, shape like ``cost``
        Transport plans :math:`P`, non-negative; rows sum to ``a`` (to rounding) and columns
        to ``b`` within ``tol`` once converged (after a fixed ``n_iters``, only approximately).
        Each plan's total mass is that of ``a``.
    info : dict
        Only if ``return_info``; see above.

    Notes
    -----
    While :math:`R = (\max C - \min C)/\varepsilon` is at most 600 (float64) or 50 (float32) in
    every problem, each log-sum-exp is computed as a batched matrix-vector product with the
    shifted kernel :math:`E = \exp((\min C - C)/\varepsilon)`, entries in :math:`[e^{-R}, 1]`:

    .. math::

        \log \sum_i \exp(u_i - C_{ij}/\varepsilon)
            = \max_i u_i - \min C / \varepsilon + \log \sum_i E_{ij}\, e^{u_i - \max u},

    which equals the log-sum-exp to rounding (the sum is at least :math:`e^{-R}`, far above
    underflow) and avoids an exp over B x N x M per iteration. Wider ranges (tiny
    :math:`\varepsilon`) use :func:`torch.logsumexp` directly. Both give the same iterates, to rounding.

    The solver is made of plain differentiable torch operations: called with gradients
    enabled and ``cost.requires_grad``, the plan can be back-propagated through, iterations
    included (autograd keeps every iteration: a few B x N and B x M vectors each, or a
    B x N x M tensor each on the :func:`torch.logsumexp` path; prefer a fixed ``n_iters``
    there). Wrap the call in ``torch.no_grad()`` when the plan is only a target, so that no
    graph is built.
    """
    if not isinstance(cost, torch.Tensor):
        raise TypeError(f"cost must be a torch.Tensor, got {type(cost).__name__}")
    if cost.dim() not in (2, 3):
        raise ValueError(f"cost must have shape (N, M) or (B, N, M), got {tuple(cost.shape)}")
    if cost.dtype not in _DTYPES:
        raise ValueError(f"cost must be float32 or float64, got {cost.dtype}")
    if cost.shape[-2] == 0 or cost.shape[-1] == 0 or (cost.dim() == 3 and cost.shape[0] == 0):
        raise ValueError(f"cost must not be empty, got shape {tuple(cost.shape)}")
    # amin/amax propagate NaN and +-inf, and are cheaper than isfinite over B x N x M.
    c_min = cost.detach().amin(dim=(-2, -1)).reshape(-1)                   # (B,)
    c_max = cost.detach().amax(dim=(-2, -1)).reshape(-1)
    if not bool(torch.isfinite(c_min).all() and torch.isfinite(c_max).all()):
        raise ValueError("cost must be finite (no NaN or inf); give impossible pairs zero mass instead")
    if not (isinstance(epsilon, numbers.Real) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    epsilon = float(epsilon)
    if n_iters is not None and not (isinstance(n_iters, numbers.Integral) and n_iters >= 1):
        raise ValueError(f"n_iters must be None or an int >= 1, got {n_iters!r}")
    if not (isinstance(max_iters, numbers.Integral) and max_iters >= 1):
        raise ValueError(f"max_iters must be an int >= 1, got {max_iters!r}")
    if not (isinstance(check_every, numbers.Integral) and check_every >= 1):
        raise ValueError(f"check_every must be an int >= 1, got {check_every!r}")
    if not (isinstance(tol, numbers.Real) and tol > 0):
        raise ValueError(f"tol must be a number > 0, got {tol!r}")

    single = cost.dim() == 2
    C = cost.unsqueeze(0) if single else cost
    B, N, M = C.shape
    a_ = _marginal(a, "a", N, None if single else B, C)
    b_ = _marginal(b, "b", M, None if single else B, C)
    sa, sb = a_.sum(-1), b_.sum(-1)
    if ((sa - sb).abs() > 1e-6 * torch.maximum(sa, sb)).any():
        i = int(((sa - sb).abs() / torch.maximum(sa, sb)).argmax())
        raise ValueError(f"marginals a and b must have the same total mass in every problem: "
                         f"problem {i} has sum(a)={sa[i].item():.9g}, sum(b)={sb[i].item():.9g}")

    # Work with u = f/eps, v = g/eps (POT's log_u, log_v) so that eps is divided out once.
    log_a, log_b = _safe_log(a_), _safe_log(b_)
    u = C.new_zeros(B, N)
    v = C.new_zeros(B, M)

    # Each log-sum-exp over the log-kernel K = -C/eps is evaluated as a matrix-vector product
    # with the shifted kernel E = exp(K - max K) = exp((min C - C)/eps), whose entries lie in
    # [exp(-R), 1] with R = (max C - min C)/eps:
    #     lse_i(K_ij + u_i) = max K + max u + log sum_i E_ij exp(u_i - max u).
    # The sum is at least exp(-R) (the term of the largest u), and a term that underflows is below
    # the dtype's smallest normal number, so while R <= _MAX_SHIFTED_RANGE the result equals
    # torch.logsumexp to rounding, with no exp over B x N x M inside the loop (a batched matvec
    # instead: an order of magnitude faster). Larger R (tiny eps) falls back to torch.logsumexp.
    # The shifts are detached: the value does not depend on them, so neither does the gradient.
    if bool(((c_max - c_min) / epsilon <= _MAX_SHIFTED_RANGE[C.dtype]).all()):
        E = torch.exp((c_min[:, None, None] - C) / epsilon)                 # (B, N, M)
        k_max = (c_min / -epsilon)[:, None]                                 # (B, 1)

        def lse_over_rows(u: torch.Tensor) -> torch.Tensor:               # lse_i(K_ij + u_i): (B, M)
            m = u.detach().amax(dim=1, keepdim=True)
            s = torch.bmm(torch.exp(u - m).unsqueeze(1), E).squeeze(1)
            return s.log() + m + k_max

        def lse_over_cols(v: torch.Tensor) -> torch.Tensor:               # lse_j(K_ij + v_j): (B, N)
            m = v.detach().amax(dim=1, keepdim=True)
            s = torch.bmm(torch.exp(v - m).unsqueeze(1), E.mT).squeeze(1)
            return s.log() + m + k_max

        def transport_plan(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            # exp(K + u + v) without another exp over B x N x M. The row factor is at most
            # a_i exp(R), so it cannot overflow; multiplying it in first keeps E_ij * w_j from
            # underflowing where the product with it would still be representable.
            m = v.detach().amax(dim=1, keepdim=True)
            return E * torch.exp(u + k_max + m)[:, :, None] * torch.exp(v - m)[:, None, :]
    else:
        K = C / -epsilon                                                    # (B, N, M)

        def lse_over_rows(u: torch.Tensor) -> torch.Tensor:
            return torch.logsumexp(K + u[:, :, None], dim=1)

        def lse_over_cols(v: torch.Tensor) -> torch.Tensor:
            return torch.logsumexp(K + v[:, None, :], dim=2)

        def transport_plan(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return torch.exp(K + u[:, :, None] + v[:, None, :])

    def col_error(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # Column sums of P in closed form: sum_i exp(u_i + v_j + K_ij) = exp(v_j + lse_i(K_ij + u_i)).
        return torch.linalg.vector_norm(torch.exp(v + lse_over_rows(u)) - b_, dim=-1)

    err: torch.Tensor | None = None
    if n_iters is not None:
        for _ in range(int(n_iters)):
            v = log_b - lse_over_rows(u)
            u = log_a - lse_over_cols(v)
        it = int(n_iters)
        if return_info:
            err = col_error(u, v).detach()
    else:
        done = torch.zeros(B, dtype=torch.bool, device=C.device)
        err = C.new_full((B,), math.inf)
        frozen = False                   # any problem done: skip the where() until then
        for it in range(1, max_iters + 1):
            v_new = log_b - lse_over_rows(u)
            u_new = log_a - lse_over_cols(v_new)
            if frozen:
                v = torch.where(done[:, None], v, v_new)
                u = torch.where(done[:, None], u, u_new)
            else:
                u, v = u_new, v_new
            if (it - 1) % check_every == 0 or it == max_iters:
                with torch.no_grad():
                    e = col_error(u, v)
                    err = torch.where(done, err, e)
                    done = done | (e < tol)
                    if bool(done.all()):
                        break
                    frozen = bool(done.any())
        else:
            warnings.warn(f"sinkhorn did not converge in {max_iters} iterations: largest column-marginal "
                          f"error {err.max().item():.3g} >= tol {tol:g} ({int((~done).sum())} of {B} problems); "
                          f"increase max_iters or epsilon", stacklevel=2)

    plan = transport_plan(u, v)
    if single:
        plan = plan[0]
    if not return_info:
        return plan
    f, g = epsilon * u, epsilon * v
    info = {"n_iters": it,
            "err": err[0] if single else err,
            "f": f[0] if single else f,
            "g": g[0] if single else g}
    return plan, info
