"""Speed and calibration of ``torchtransfer.shift.permutation_test``; prints tables (not a test).

Speed: for n = m ∈ SIZES, d ∈ DIMS and B permutations, the vectorised test (end to end: median heuristic,
kernel, all permutations) beside a plain reference that builds the same pooled kernel matrix and loops over
the same permutations in Python, recomputing the unbiased MMD² from the permuted kernel blocks (the
approach of alibi-detect's MMDDrift). The loop is timed on ``--loop-perms`` permutations and scaled to B;
its statistics must equal ours to 1e-6 relative. Peak memory is the growth of the process's peak resident
set (VmHWM, reset through /proc/self/clear_refs) over the resident set before the call.

Calibration: the share of independent H0 draws (both samples from one Gaussian) that the test rejects at
α = 0.05, beside the central 99 % binomial band.

    .venv/bin/python benchmarks/shift.py [--sizes 500 1000 2000 5000] [--dims 64 784] [--permutations 1000]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch
from scipy import stats

from torchtransfer import shift


def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def measure(fn):
    """(result, seconds, peak MiB above the resident set before the call)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, (_rss_kib("VmHWM") - before) / 1024


def loop_reference(x: torch.Tensor, y: torch.Tensor, bandwidth: float, masks: torch.Tensor) -> list[float]:
    """Pooled kernel matrix once, then one Python iteration per permutation; masks (b, N) bool."""
    z = torch.cat([x, y])
    k = shift.gaussian_kernel(z, z, bandwidth)  # (N, N)
    m, n = len(x), len(y)
    out = []
    for w in masks:
        ix, iy = w.nonzero().squeeze(1), (~w).nonzero().squeeze(1)
        kxx, kyy, kxy = k[ix][:, ix], k[iy][:, iy], k[ix][:, iy]
        out.append(float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
                         + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean()))
    return out


def speed_row(n: int, d: int, n_perm: int, loop_perms: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, d, generator=g, dtype=torch.float64) + 0.02
    res, t_vec, mem_vec = measure(lambda: shift.permutation_test(x, y, n_permutations=n_perm, seed=seed))
    b = min(loop_perms, n_perm)
    masks = shift.permutation_masks(2 * n, n, min(b, shift.RNG_BLOCK), torch.Generator().manual_seed(seed))
    masks = masks.T.bool()[:b]  # the first b permutations the test drew (b ≤ one RNG block)
    ident = torch.zeros(1, 2 * n, dtype=torch.bool)
    ident[0, :n] = True
    loop, t_loop, mem_loop = measure(lambda: loop_reference(x, y, res.bandwidth, torch.cat([ident, masks])))
    ours = torch.tensor([res.mmd2, *res.null[:b]])
    rel = float(((ours - torch.tensor(loop)).abs() / torch.tensor(loop).abs()).max())
    t_loop_full = t_loop * (n_perm + 1) / (b + 1)
    return {"n": n, "d": d, "B": n_perm, "t_vec": t_vec, "mem_vec": mem_vec, "t_loop": t_loop_full,
            "loop_timed": b, "mem_loop": mem_loop, "speedup": t_loop_full / t_vec, "max_rel": rel}


def calibration(draws: int, n: int, d: int, n_perm: int, alpha: float = 0.05) -> tuple[int, int, int]:
    rejections = 0
    for s in range(draws):
        g = torch.Generator().manual_seed(10_000 + s)
        x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        rejections += shift.permutation_test(x, y, n_permutations=n_perm, seed=s).p_value <= alpha
    low, high = stats.binom.interval(0.99, draws, alpha)
    return rejections, int(low), int(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 784])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--loop-perms", type=int, default=50, help="permutations the loop is timed on")
    parser.add_argument("--draws", type=int, default=2000, help="H0 draws for the calibration table")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64\n")
    print("| n = m | d | B | permutation_test s | peak MiB | Python loop s (timed perms) | loop peak MiB "
          "| speed-up | max rel. diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for d in args.dims:
            r = speed_row(n, d, args.permutations, args.loop_perms)
            print(f"| {r['n']} | {r['d']} | {r['B']} | {r['t_vec']:.2f} | {r['mem_vec']:.0f} | "
                  f"{r['t_loop']:.1f} ({r['loop_timed']}) | {r['mem_loop']:.0f} | {r['speedup']:.0f}× | "
                  f"{r['max_rel']:.1e} |", flush=True)
    n, d, n_perm = 50, 10, 199
    rejected, low, high = calibration(args.draws, n, d, n_perm)
    print(f"\nH0 calibration: n = m = {n}, d = {d}, B = {n_perm}, {args.draws} independent draws, α = 0.05")
    print("| rejections | false-positive rate | 99 % binomial band (count) | inside |")
    print("|---:|---:|---:|:---|")
    print(f"| {rejected} | {rejected / args.draws:.4f} | [{low}, {high}] | {low <= rejected <= high} |")


if __name__ == "__main__":
    main()
