"""How fast is the batched Sinkhorn of :mod:`s2d_core.densify.ot` against POT, at equal accuracy?

The workload of the OT densifiers: B images, each an independent problem that spreads N pixels
(uniform mass 1/N) over M prototypes (uniform mass 1/M) under the cosine cost of random unit
features. Ours solves the whole batch in one call (float64 and float32; CPU, and CUDA when
present); POT (the reference of the tests) is looped over the images in numpy float64, with
``ot.bregman.sinkhorn_log`` (the same log-domain algorithm) and ``ot.sinkhorn`` (the plain,
kernel-domain one, which is fast but underflows at small eps). All stop when the column-marginal
error ``||P^T 1 - b||_2`` is below ``--tol`` (max 1000 iterations), tested every 10 iterations.

Each timing is the median of ``--repeats`` runs after a warm-up. The target is a speed-up of at
least 10x over a POT loop at equal accuracy: every problem's marginal error below ``--tol``.

    python -m benchmarks.ot_speed                        # B=64, N=1024, M=8, eps=0.05
    python -m benchmarks.ot_speed --out benchmarks/records/ot_speed/cpu.md   # + cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import ot
import torch

from s2d_core.cache import atomic_write_bytes
from s2d_core.densify.ot import cosine_cost, sinkhorn

TARGET = 10.0
MAX_ITERS = 1000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None,
                warmup: Callable[[], object] | None = None):
    """Median wall time (s) of ``fn`` over ``repeats`` runs after a warm-up (``fn`` itself by
    default), and the result of the last run."""
    (warmup or fn)()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def make_costs(batch: int, pixels: int, prototypes: int, dim: int, seed: int) -> torch.Tensor:
    """(B, N, M) float64 cosine costs between random unit pixel features and per-image prototypes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, pixels, dim, generator=g, dtype=torch.float64)
    y = torch.randn(batch, prototypes, dim, generator=g, dtype=torch.float64)
    return cosine_cost(x, y)


def col_error(plans: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(plans.sum(-2) - b, axis=-1)


def pot_loop(solver, costs: np.ndarray, eps: float, tol: float) -> np.ndarray:
    a, b = np.full(costs.shape[1], 1.0 / costs.shape[1]), np.full(costs.shape[2], 1.0 / costs.shape[2])
    return np.stack([solver(a, b, c, eps, numItermax=MAX_ITERS, stopThr=tol) for c in costs])


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            raise SystemExit("--device cuda: no CUDA device")
        devices.remove("cuda")
    B, N, M = args.batch, args.pixels, args.prototypes
    costs = make_costs(B, N, M, args.dim, args.seed)
    costs_np = costs.numpy()
    b = np.full(M, 1.0 / M)
    log(f"B={B} problems of N={N} x M={M}, eps={args.eps}, tol={args.tol}, {args.repeats} repeats, "
        f"{args.threads} torch thread(s); cost range per problem up to "
        f"{float((costs.amax((1, 2)) - costs.amin((1, 2))).max()):.3f}")

    rows = []
    ref = None
    pot = {"sinkhorn_log": ot.bregman.sinkhorn_log, "sinkhorn": ot.sinkhorn}
    for name, solver in pot.items():
        log(f"POT {name}: looping over {B} problems ...")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Warm up on two problems only: a numpy loop has nothing to compile or allocate.
            sec, plans = median_time(lambda: pot_loop(solver, costs_np, args.eps, args.tol), args.repeats,
                                     warmup=lambda: pot_loop(solver, costs_np[:2], args.eps, args.tol))
            iters = [solver(np.full(N, 1 / N), b, c, args.eps, numItermax=MAX_ITERS, stopThr=args.tol,
                            log=True)[1]["niter"] + 1 for c in costs_np]
        notes = sorted({str(w.message).split(".")[0] for w in caught})
        if notes:
            log(f"  POT {name} warned: {notes}")
        if ref is None:
            ref = plans
        rows.append({"method": f"POT `{name}` loop", "device": "cpu", "dtype": "float64", "seconds": sec,
                     "iterations": [min(iters), max(iters)], "max_err": float(col_error(plans, b).max()),
                     "max_plan_diff": float(np.abs(plans - ref).max()), "warnings": notes})
        log(f"  {sec:.4f} s")

    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for dtype in (torch.float64, torch.float32):
            c = costs.to(device=device, dtype=dtype)
            log(f"ours, batched, {device} {str(dtype).removeprefix('torch.')} ...")
            with torch.no_grad():
                sec, (plan, info) = median_time(
                    lambda: sinkhorn(c, epsilon=args.eps, tol=args.tol, max_iters=MAX_ITERS, return_info=True),
                    args.repeats, sync)
            plan = plan.double().cpu().numpy()
            rows.append({"method": "ours, batched", "device": device, "dtype": str(dtype).removeprefix("torch."),
                         "seconds": sec, "iterations": [info["n_iters"]] * 2,
                         "max_err": float(col_error(plan, b).max()),
                         "max_plan_diff": float(np.abs(plan - ref).max()), "warnings": []})
            log(f"  {sec:.4f} s")

    pot_sec = {name: rows[i]["seconds"] for i, name in enumerate(pot)}
    for r in rows:
        r["speedup"] = {name: s / r["seconds"] for name, s in pot_sec.items()}
        # Equal accuracy: every problem meets the same marginal tolerance as POT's.
        r["accurate"] = r["max_err"] < args.tol
        r["target_met"] = {name: bool(r["accurate"] and x >= TARGET) for name, x in r["speedup"].items()}
    config = vars(args) | {"out": None if args.out is None else str(args.out), "max_iters": MAX_ITERS,
                           "target_speedup": TARGET}
    return {"config": config,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__, "POT": ot.__version__},
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "cuda": torch.cuda.get_device_name() if "cuda" in devices else None},
            "rows": rows}


def table(res: dict) -> str:
    cfg = res["config"]
    lines = [f"Sinkhorn, B={cfg['batch']} problems of N={cfg['pixels']} x M={cfg['prototypes']} "
             f"(cosine cost, D={cfg['dim']}), eps={cfg['eps']}, tol={cfg['tol']}; median of "
             f"{cfg['repeats']} runs; {cfg['threads']} torch thread(s), {res['machine']['cpu_count']} CPU cores; "
             f"POT {res['versions']['POT']}, torch {res['versions']['torch']}.",
             "",
             "| method | device | dtype | seconds | iterations | max marginal error "
             "| max abs plan diff vs POT `sinkhorn_log` | speed-up vs POT `sinkhorn_log` loop "
             "| speed-up vs POT `sinkhorn` loop | >= 10x at equal accuracy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lo, hi = r["iterations"]
        its = str(lo) if lo == hi else f"{lo}-{hi}"
        met = ", ".join(f"{'yes' if ok else 'no'} vs `{n}`" for n, ok in r["target_met"].items())
        lines.append(f"| {r['method']} | {r['device']} | {r['dtype']} | {r['seconds']:.4f} | {its} | "
                     f"{r['max_err']:.1e} | {r['max_plan_diff']:.1e} | {r['speedup']['sinkhorn_log']:.1f}x | "
                     f"{r['speedup']['sinkhorn']:.1f}x | {met if r['method'].startswith('ours') else '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64, help="number of independent problems (images)")
    ap.add_argument("--pixels", type=int, default=1024, help="N, rows of each problem")
    ap.add_argument("--prototypes", type=int, default=8, help="M, columns of each problem")
    ap.add_argument("--dim", type=int, default=64, help="feature dimension of the cosine cost")
    ap.add_argument("--eps", type=float, default=0.05, help="entropic regularisation (units of the cost)")
    ap.add_argument("--tol", type=float, default=1e-6, help="stopping tolerance on the column-marginal error")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per method (median reported)")
    ap.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                    help="where ours runs; 'all' = cpu, and cuda when available")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: POT's loop runs on one core too)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="write the Markdown table to this file and the numbers to the same path with .json")
    args = ap.parse_args(argv)
    res = run(args)
    md = table(res)
    print(md)
    if args.out is not None:
        atomic_write_bytes(args.out, md.encode())
        atomic_write_bytes(args.out.with_suffix(".json"), json.dumps(res, indent=1).encode())
        log(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
