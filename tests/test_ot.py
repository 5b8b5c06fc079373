"""Entropic OT (`s2d_core.densify.ot`) against POT, an independent reference implementation.

POT solves one problem at a time in numpy; `sinkhorn` solves a batch in torch with the same
iteration (column potential, then row potential) and the same stopping rule, so at equal
tolerance the plans agree to rounding, not merely to the tolerance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

ot = pytest.importorskip("ot")

from s2d_core.densify import ot as ot_mod  # noqa: E402
from s2d_core.densify.ot import cosine_cost, sinkhorn  # noqa: E402

TOL = 1e-9          # stopping tolerance on both sides (column-marginal error, units of mass)
MAX_ITERS = 20000


def pot_log(C, a, b, eps, tol=TOL, max_iters=MAX_ITERS):
    """POT's log-domain Sinkhorn on one (N, M) problem; its overflow/convergence chatter muted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ot.bregman.sinkhorn_log(a, b, C, eps, numItermax=max_iters, stopThr=tol)


def uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


@pytest.fixture(params=["shifted", "logsumexp"])
def path(request, monkeypatch):
    """Run a test through both ways of evaluating the log-sum-exps (see `sinkhorn`)."""
    if request.param == "logsumexp":
        monkeypatch.setattr(ot_mod, "_MAX_SHIFTED_RANGE", {torch.float64: -1.0, torch.float32: -1.0})
    return request.param


@pytest.mark.parametrize("eps", [0.05, 0.1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_matches_pot_sinkhorn_log_uniform(seed, eps, path):
    rng = np.random.default_rng(seed)
    B, N, M = 3, 17, 5
    C = rng.random((B, N, M))
    plan, info = sinkhorn(torch.from_numpy(C), epsilon=eps, tol=TOL, max_iters=MAX_ITERS, return_info=True)
    ref = np.stack([pot_log(C[i], uniform(N), uniform(M), eps) for i in range(B)])
    assert plan.shape == (B, N, M) and plan.dtype == torch.float64
    assert np.abs(plan.numpy() - ref).max() < 1e-12
    assert info["err"].shape == (B,) and (info["err"] < TOL).all()


@pytest.mark.parametrize("seed", [3, 4])
def test_batched_matches_pot_dirichlet_marginals(seed, path):
    rng = np.random.default_rng(seed)
    B, N, M, eps = 3, 20, 6, 0.05
    C = rng.random((B, N, M))
    a = rng.dirichlet(np.ones(N), size=B)
    b = rng.dirichlet(np.ones(M), size=B)
    plan = sinkhorn(torch.from_numpy(C), torch.from_numpy(a), torch.from_numpy(b), epsilon=eps, tol=TOL,
                    max_iters=MAX_ITERS)
    ref = np.stack([pot_log(C[i], a[i], b[i], eps) for i in range(B)])
    assert np.abs(plan.numpy() - ref).max() < 1e-12
    np.testing.assert_allclose(plan.sum(-1).numpy(), a, rtol=0, atol=1e-14)   # rows: exact after each iteration
    assert np.linalg.norm(plan.sum(-2).numpy() - b, axis=-1).max() < TOL     # columns: within tol


def test_shared_marginals_and_batch_independence():
    """A (N,) marginal is shared by the batch; each problem's plan is the one it gets alone."""
    rng = np.random.default_rng(5)
    B, N, M = 4, 15, 7
    C = torch.from_numpy(rng.random((B, N, M)))
    a = torch.from_numpy(rng.dirichlet(np.ones(N)))
    plan = sinkhorn(C, a, epsilon=0.05, tol=TOL, max_iters=MAX_ITERS)
    for i in range(B):
        alone = sinkhorn(C[i], a, epsilon=0.05, tol=TOL, max_iters=MAX_ITERS)
        assert torch.allclose(plan[i], alone, rtol=0, atol=1e-15)


def test_small_epsilon_plain_pot_degenerates_log_domain_matches():
    """eps = 1e-3 on costs in [0.75, 1]: exp(-C/eps) < exp(-745) underflows to 0 in float64."""
    N, M, eps = 12, 9, 1e-3
    C = np.stack([np.random.default_rng(s).uniform(0.75, 1.0, (N, M)) for s in (2, 3)])
    a, b = uniform(N), uniform(M)

    # POT's plain Sinkhorn divides by K^T u = 0 at its first iteration, says so, and returns a
    # plan with (numerically) no mass.
    with pytest.warns(UserWarning, match="numerical errors"), np.errstate(divide="ignore", invalid="ignore"):
        plain = ot.sinkhorn(a, b, C[0], eps, numItermax=1000, stopThr=TOL)
    assert np.isnan(plain).any() or np.abs(plain.sum(1) - a).max() > 0.5 * a.max()

    ref = np.stack([pot_log(C[i], a, b, eps) for i in range(2)])
    plan, info = sinkhorn(torch.from_numpy(C), epsilon=eps, tol=TOL, max_iters=MAX_ITERS, return_info=True)
    assert torch.isfinite(plan).all() and (info["err"] < TOL).all()
    # Potentials are O(1/eps) here, so rounding is amplified: agreement to 1e-12 rather than 1e-15.
    assert np.abs(plan.numpy() - ref).max() < 1e-12


def test_small_epsilon_wide_cost_range_uses_logsumexp():
    """Costs in [0, 1] at eps = 1e-3 (range/eps = 1000): too wide for the shifted kernel."""
    rng = np.random.default_rng(0)
    N, M, eps, n = 12, 9, 1e-3, 300
    C = rng.random((N, M))
    # A fixed number of iterations on both sides (POT: tol 0 never stops): identical iterates.
    ref = pot_log(C, uniform(N), uniform(M), eps, tol=0.0, max_iters=n)
    plan = sinkhorn(torch.from_numpy(C), epsilon=eps, n_iters=n)
    assert torch.isfinite(plan).all()
    assert np.abs(plan.numpy() - ref).max() < 1e-12


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_agrees_with_pot_plain_sinkhorn_at_moderate_eps(eps):
    rng = np.random.default_rng(6)
    N, M = 25, 8
    C = rng.random((N, M))
    a, b = rng.dirichlet(np.ones(N)), rng.dirichlet(np.ones(M))
    ref = ot.sinkhorn(a, b, C, eps, numItermax=MAX_ITERS, stopThr=TOL)
    plan = sinkhorn(torch.from_numpy(C), torch.from_numpy(a), torch.from_numpy(b), epsilon=eps, tol=TOL,
                    max_iters=MAX_ITERS)
    assert np.abs(plan.numpy() - ref).max() < 1e-12


def test_fixed_n_iters_and_single_problem_info(path):
    rng = np.random.default_rng(7)
    N, M, eps, n = 30, 4, 0.05, 7
    C = rng.random((N, M))
    ref = pot_log(C, uniform(N), uniform(M), eps, tol=0.0, max_iters=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a fixed n_iters never warns about convergence
        plan, info = sinkhorn(torch.from_numpy(C), epsilon=eps, n_iters=n, return_info=True)
    assert info["n_iters"] == n
    assert np.abs(plan.numpy() - ref).max() < 1e-14
    # Single problem: info without the batch dimension, and P = exp((f + g - C)/eps).
    assert info["err"].shape == () and info["f"].shape == (N,) and info["g"].shape == (M,)
    expected = torch.exp((info["f"][:, None] + info["g"][None, :] - torch.from_numpy(C)) / eps)
    assert torch.allclose(plan, expected, rtol=1e-12, atol=0)
    err = np.linalg.norm(plan.sum(0).numpy() - uniform(M))
    assert info["err"].item() == pytest.approx(err, rel=1e-9, abs=1e-15)


def test_not_converging_warns():
    C = torch.from_numpy(np.random.default_rng(8).random((2, 20, 6)))
    with pytest.warns(UserWarning, match="did not converge in 3 iterations"):
        _, info = sinkhorn(C, epsilon=0.01, tol=1e-12, max_iters=3, return_info=True)
    assert info["n_iters"] == 3 and (info["err"] >= 1e-12).all()


def test_float32(path):
    rng = np.random.default_rng(9)
    C = rng.random((3, 40, 6))
    p64 = sinkhorn(torch.from_numpy(C), epsilon=0.05, tol=1e-7)
    p32, info = sinkhorn(torch.from_numpy(C).float(), epsilon=0.05, tol=1e-6, return_info=True)
    assert p32.dtype == torch.float32 and info["err"].dtype == torch.float32
    assert (info["err"] < 1e-6).all()
    assert (p32.double() - p64).abs().max() < 1e-5 * p64.max()
    assert (p32.sum(-1) - 1 / 40).abs().max() < 1e-6


def _central_difference(loss, C, V, h=1e-5):
    """(loss(C + hV) - loss(C - hV)) / 2h: the derivative of ``loss`` at C in the direction V."""
    with torch.no_grad():
        return float((loss(C + h * V) - loss(C - h * V)) / (2 * h))


def test_gradients_flow_and_no_grad_builds_no_graph(path):
    rng = np.random.default_rng(10)
    C = torch.tensor(rng.random((2, 9, 4)), requires_grad=True)
    W = torch.from_numpy(rng.random((2, 9, 4)))
    loss = lambda c: (sinkhorn(c, epsilon=0.1, tol=1e-9) * W).sum()  # noqa: E731
    plan = sinkhorn(C, epsilon=0.1, tol=1e-9)
    assert plan.requires_grad
    loss(C).backward()
    # the gradient through the (early-stopped) iterations is the derivative of the converged plan
    V = torch.from_numpy(rng.standard_normal(C.shape))
    assert float((C.grad * V).sum()) == pytest.approx(_central_difference(loss, C, V), rel=1e-6)
    with torch.no_grad():
        plan = sinkhorn(C, epsilon=0.1, tol=1e-9)
    assert not plan.requires_grad and plan.grad_fn is None


def test_gradcheck(path):
    C = torch.tensor(np.random.default_rng(11).random((2, 4, 3)), requires_grad=True)
    a = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda c: sinkhorn(c, a, epsilon=0.2, n_iters=15), (C,))


@pytest.mark.parametrize("call, match", [
    (lambda: sinkhorn(torch.rand(5, dtype=torch.float64)), r"cost must have shape \(N, M\) or \(B, N, M\)"),
    (lambda: sinkhorn(torch.rand(2, 2, 5, 3, dtype=torch.float64)), r"got \(2, 2, 5, 3\)"),
    (lambda: sinkhorn(torch.rand(5, 3, dtype=torch.float16)), "float32 or float64"),
    (lambda: sinkhorn(torch.rand(5, 3).long()), "float32 or float64"),
    (lambda: sinkhorn(torch.tensor([[0.0, float("nan")], [1.0, 0.0]])), "cost must be finite"),
    (lambda: sinkhorn(torch.tensor([[0.0, float("inf")], [1.0, 0.0]])), "cost must be finite"),
    (lambda: sinkhorn(torch.rand(5, 3), epsilon=0.0), "epsilon must be a finite number > 0"),
    (lambda: sinkhorn(torch.rand(5, 3), epsilon=-1.0), "epsilon must be a finite number > 0"),
    (lambda: sinkhorn(torch.rand(5, 3), a=torch.full((4,), 0.25)), r"a must have shape \(5,\).*got \(4,\)"),
    (lambda: sinkhorn(torch.rand(2, 5, 3), b=torch.full((3, 3), 1 / 3)),
     r"b must have shape \(3,\) or \(2, 3\).*got \(3, 3\)"),
    (lambda: sinkhorn(torch.rand(5, 3), a=torch.tensor([0.5, 0.5, 0.5, -0.5, 0.0])), "a must be non-negative"),
    (lambda: sinkhorn(torch.rand(5, 3), b=torch.tensor([0.0, 0.0, 0.0])), "positive total mass"),
    (lambda: sinkhorn(torch.rand(5, 3), b=torch.tensor([0.5, 0.5, 0.5])), r"same total mass.*sum\(b\)=1.5"),
    (lambda: sinkhorn(torch.rand(5, 3), n_iters=0), "n_iters must be None or an int >= 1"),
    (lambda: sinkhorn(torch.rand(5, 3), tol=0.0), "tol must be"),
    (lambda: sinkhorn(torch.rand(5, 3), check_every=0), "check_every must be"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cosine_cost_matches_numpy():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(2, 11, 16)), rng.normal(size=(2, 5, 16))
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=-1, keepdims=True)
    ref = 1.0 - np.einsum("bnd,bmd->bnm", xn, yn)
    C = cosine_cost(torch.from_numpy(x), torch.from_numpy(y))
    assert C.shape == (2, 11, 5)
    np.testing.assert_allclose(C.numpy(), ref, rtol=0, atol=1e-12)
    # Leading dimensions broadcast (shared prototypes); the range is [0, 2].
    C1 = cosine_cost(torch.from_numpy(x), torch.from_numpy(y[0]))
    np.testing.assert_allclose(C1[1].numpy(), 1.0 - xn[1] @ yn[0].T, rtol=0, atol=1e-12)
    v = torch.tensor([[1.0, 2.0], [-2.0, -4.0], [0.0, 0.0]])
    np.testing.assert_allclose(cosine_cost(v, v[:1]).numpy(), [[0.0], [2.0], [1.0]], atol=1e-6)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        cosine_cost(torch.rand(3, 4), torch.rand(2, 5))


def test_zero_mass_rows_and_columns(path):
    rng = np.random.default_rng(13)
    N, M, eps = 12, 6, 0.05
    C = rng.random((N, M))
    a = rng.dirichlet(np.ones(N))
    a[[1, 4]] = 0.0
    a /= a.sum()
    b = rng.dirichlet(np.ones(M))
    b[2] = 0.0
    b /= b.sum()
    Ct = torch.tensor(C, requires_grad=True)
    plan = sinkhorn(Ct, torch.from_numpy(a), torch.from_numpy(b), epsilon=eps, tol=TOL, max_iters=MAX_ITERS)
    assert not torch.isnan(plan).any()
    assert (plan[[1, 4]] == 0).all() and (plan[:, 2] == 0).all()
    assert np.abs(plan.detach().numpy() - pot_log(C, a, b, eps)).max() < 1e-12
    # a weighted sum (plan.sum() is the constant total mass, whose gradient is ~0)
    W = torch.from_numpy(rng.random(C.shape))
    loss = lambda c: (sinkhorn(c, torch.from_numpy(a), torch.from_numpy(b), epsilon=eps, tol=TOL,  # noqa: E731
                               max_iters=MAX_ITERS) * W).sum()
    loss(Ct).backward()
    V = torch.from_numpy(rng.standard_normal(C.shape))
    assert float((Ct.grad * V).sum()) == pytest.approx(_central_difference(loss, Ct, V), rel=1e-6)
    # costs of rows and columns without mass cannot move the plan
    assert Ct.grad[[1, 4]].abs().max() < 1e-8 and (Ct.grad[:, 2] == 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    C = torch.from_numpy(np.random.default_rng(14).random((4, 64, 8)))
    cpu = sinkhorn(C, epsilon=0.05, tol=TOL)
    gpu = sinkhorn(C.cuda(), epsilon=0.05, tol=TOL)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-12
