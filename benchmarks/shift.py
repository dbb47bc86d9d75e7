"""Speed and calibration of ``torchtransfer.shift.permutation_test``; prints tables (not a test).

Speed: for n = m ∈ SIZES, d ∈ DIMS and B permutations, the vectorised test (end to end: median heuristic,
kernel, all permutations) beside a plain reference that builds the same pooled kernel matrix and loops over
the same permutations in Python, recomputing the unbiased MMD² from the permuted kernel blocks (the
approach of alibi-detect's MMDDrift), and a stronger baseline: the same loop with one quadratic form wᵀK̃w
per permutation (K̃ the kernel matrix with its diagonal zeroed, w = +1/m on source and −1/n on target
entries) plus wᵀ(K̃1), from which, with 1ᵀK̃1, the unbiased MMD² follows exactly. The loops are timed on
``--loop-perms`` permutations and scaled to B; the benchmark fails (AssertionError) unless all three give
the same statistics to ``RTOL`` relative. permutation_test's time is the best of ``--repeat`` runs.
Each measurement runs in a fresh process; peak memory is the growth of its peak resident set (VmHWM, reset
through /proc/self/clear_refs) over the resident set before the call. The loop's kernel build is timed once,
its iterations are scaled from ``--loop-perms`` to B; it runs with 1 thread and with all, and the faster
counts. "its CPU s" is the process CPU time of the best run
(both threads together): on a machine shared with other jobs, wall time ≥ CPU time / threads.

Calibration: the share of independent H0 draws (both samples from one Gaussian) that the test rejects at
α = 0.05, beside the central 99 % binomial band.

    .venv/bin/python benchmarks/shift.py [--sizes 500 1000 2000 5000] [--dims 64 784] [--permutations 1000]
    .venv/bin/python benchmarks/shift.py --table [--docs]   # the tables of benchmarks/results/shift_speed.json

A run writes ``benchmarks/results/shift_speed.json`` (the commit, the config and every row); ``--table`` prints
the tables from it and ``--docs`` writes them into the docs page that holds their markers.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import doctables  # noqa: E402
from torchtransfer import shift  # noqa: E402
from torchtransfer.provenance import code_record  # noqa: E402
from torchtransfer.shift.mmd import RNG_BLOCK  # noqa: E402  (not re-exported by torchtransfer.shift)

RESULTS = ROOT / "benchmarks/results/shift_speed.json"

RTOL = 1e-6  # relative agreement required of the three computations of the same statistics

def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, torch.randn(n, d, generator=g, dtype=torch.float64) + 0.02


def loop_reference(x: torch.Tensor, y: torch.Tensor, bandwidth: float, masks: torch.Tensor):
    """Pooled kernel matrix once, then one Python iteration per permutation; masks (b, N) bool.
    Returns (statistics, seconds for the kernel, seconds for the loop)."""
    start = time.perf_counter()
    z = torch.cat([x, y])
    k = shift.gaussian_kernel(z, z, bandwidth)  # (N, N)
    t_kernel = time.perf_counter() - start
    m, n = len(x), len(y)
    out = []
    for w in masks:
        ix, iy = w.nonzero().squeeze(1), (~w).nonzero().squeeze(1)
        kxx, kyy, kxy = k[ix][:, ix], k[iy][:, iy], k[ix][:, iy]
        out.append(float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
                         + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean()))
    return out, t_kernel, time.perf_counter() - start - t_kernel


def quadratic_reference(x: torch.Tensor, y: torch.Tensor, bandwidth: float, masks: torch.Tensor):
    """The same pooled kernel matrix, one quadratic form per permutation: with K̃ = K minus its diagonal,
    r = K̃1 and T = 1ᵀK̃1 (once), Q = wᵀK̃w and u = wᵀr give the within- and between-sample sums
    (s_xx, s_yy, s_xy) by a fixed 3 × 3 linear map, so the unbiased MMD² is a fixed combination of (Q, u, T).
    Returns (statistics, seconds for the kernel, seconds for the loop)."""
    start = time.perf_counter()
    z = torch.cat([x, y])
    k = shift.gaussian_kernel(z, z, bandwidth)
    k.diagonal().zero_()  # the unbiased estimator leaves out k(z_i, z_i)
    r = k.sum(1)
    total = r.sum()
    m, n = len(x), len(y)
    # (Q, u, T) = A (s_xx, s_yy, s_xy); MMD² = c · (s_xx, s_yy, s_xy) = (c A⁻¹) · (Q, u, T)
    a = torch.tensor([[1 / m**2, 1 / n**2, -2 / (m * n)], [1 / m, -1 / n, 1 / m - 1 / n], [1.0, 1.0, 2.0]],
                     dtype=torch.float64)
    c = torch.tensor([1 / (m * (m - 1)), 1 / (n * (n - 1)), -2 / (m * n)], dtype=torch.float64)
    coef = (c @ torch.linalg.inv(a)).to(k.dtype)
    t_kernel = time.perf_counter() - start
    out = []
    for mask in masks:
        w = torch.where(mask, 1 / m, -1 / n).to(k.dtype)
        out.append(float(coef[0] * (w @ (k @ w)) + coef[1] * (w @ r) + coef[2] * total))
    return out, t_kernel, time.perf_counter() - start - t_kernel


REFERENCES = {"loop": loop_reference, "quad": quadratic_reference}


def one(kind: str, n: int, d: int, n_perm: int, loop_perms: int, repeat: int, seed: int = 0) -> dict:
    """One measurement in this (fresh) process: time, peak MiB above the resident set before, statistics."""
    x, y = _data(n, d, seed)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    if kind == "vec":
        times = []
        for _ in range(repeat):  # best of `repeat`: the machine is shared
            start, cpu = time.perf_counter(), time.process_time()
            res = shift.permutation_test(x, y, n_permutations=n_perm, seed=seed)
            times.append((time.perf_counter() - start, time.process_time() - cpu))
        best = min(times)
        out = {"seconds": best[0], "cpu": best[1], "stats": [res.mmd2, *res.null[:loop_perms]]}
    else:
        b = min(loop_perms, n_perm, RNG_BLOCK)  # the first b permutations the test drew
        masks = shift.permutation_masks(2 * n, n, b, torch.Generator().manual_seed(seed)).T.bool()
        ident = torch.zeros(1, 2 * n, dtype=torch.bool)
        ident[0, :n] = True
        bandwidth = shift.median_bandwidth(torch.cat([x, y]), seed)
        runs = []
        for threads in sorted({1, torch.get_num_threads()}):  # the loop's better thread setting (small ops
            torch.set_num_threads(threads)  # stall on thread barriers when the machine is shared)
            cpu = time.process_time()
            stats, t_kernel, t_iter = REFERENCES[kind](x, y, bandwidth, torch.cat([ident, masks]))
            scale = (n_perm + 1) / (b + 1)
            runs.append((t_kernel + t_iter * scale, (time.process_time() - cpu) * scale))
        best = min(runs)
        out = {"seconds": best[0], "cpu": best[1], "stats": stats, "timed": b}
    return out | {"peak_mib": (_rss_kib("VmHWM") - before) / 1024}


def _spawn(kind: str, n: int, d: int, args) -> dict:
    cmd = [sys.executable, __file__, "--one", kind, str(n), str(d), "--permutations", str(args.permutations),
           "--loop-perms", str(args.loop_perms), "--repeat", str(args.repeat)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def check_agree(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL) -> None:
    """``got`` equals ``want`` to ``rtol`` relative, each statistic or (null statistics near 0, where the
    quadratic form's cancellation of O(1) terms shows) relative to the largest |statistic|."""
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * scale,
                               msg=lambda m: f"{name}: statistics disagree beyond rtol {rtol}: {m}")


def speed_row(n: int, d: int, args) -> dict:
    vec, loop, quad = (_spawn(kind, n, d, args) for kind in ("vec", "loop", "quad"))
    ours, ref, qf = (torch.tensor(r["stats"][: len(loop["stats"])], dtype=torch.float64) for r in (vec, loop, quad))
    check_agree(f"n={n} d={d}: permutation_test vs the sub-matrix loop", ours, ref)
    check_agree(f"n={n} d={d}: permutation_test vs the quadratic-form loop", ours, qf)
    return {"t_quad": quad["seconds"], "cpu_quad": quad["cpu"], "speedup_quad": quad["seconds"] / vec["seconds"],
            "n": n, "d": d, "B": args.permutations, "t_vec": vec["seconds"], "cpu_vec": vec["cpu"],
            "mem_vec": vec["peak_mib"], "t_loop": loop["seconds"], "cpu_loop": loop["cpu"],
            "loop_timed": loop["timed"], "mem_loop": loop["peak_mib"],
            "speedup": loop["seconds"] / vec["seconds"], "max_rel": float(((ours - ref).abs() / ref.abs()).max()),
            "scale_rel": float((ours - ref).abs().max() / ref.abs().max())}


def calibration(draws: int, n: int, d: int, n_perm: int, alpha: float = 0.05) -> tuple[int, int, int]:
    rejections = 0
    for s in range(draws):
        g = torch.Generator().manual_seed(10_000 + s)
        x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        rejections += shift.permutation_test(x, y, n_permutations=n_perm, seed=s).p_value <= alpha
    low, high = stats.binom.interval(0.99, draws, alpha)
    return rejections, int(low), int(high)


def run(args) -> dict:
    """Every speed row and the H0 calibration: the result file's content (commit, config, rows)."""
    rows = []
    for n in args.sizes:
        for d in args.dims:
            rows.append(speed_row(n, d, args))
            print(json.dumps(rows[-1]), flush=True)
    n, d, n_perm = 50, 10, 199
    rejected, low, high = calibration(args.draws, n, d, n_perm) if args.draws else (0, 0, 0)
    tags, _ = code_record(ROOT)
    config = {k: v for k, v in vars(args).items() if k not in ("table", "docs", "results", "one")}
    config.update(torch=torch.__version__, threads=torch.get_num_threads())
    return {"commit": tags["git.commit"], "dirty": tags["git.dirty"], "config": config, "rows": rows,
            "calibration": {"n": n, "d": d, "B": n_perm, "draws": args.draws, "rejected": rejected,
                            "band": [low, high]}}


def table(result: dict) -> str:
    """The speed table and the calibration table of a result file."""
    c = result["config"]
    lines = [f"torch {c['torch']}, {c['threads']} threads, float64. Commit {result['commit'][:7]}"
             f"{' (dirty)' if result['dirty'] == 'true' else ''}.", "",
             "| n = m | d | B | permutation_test s | its CPU s | peak MiB | Python loop s (timed perms) | its CPU s "
             "| loop peak MiB | speed-up (wall) | speed-up (CPU) | quadratic-form loop s | its CPU s | speed-up vs it "
             "| max rel. diff | max diff / max stat |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['n']} | {r['d']} | {r['B']} | {r['t_vec']:.2f} | {r['cpu_vec']:.2f} | {r['mem_vec']:.0f} | "
              f"{r['t_loop']:.1f} ({r['loop_timed']}) | {r['cpu_loop']:.1f} | {r['mem_loop']:.0f} | "
              f"{r['speedup']:.0f}× | {r['cpu_loop'] / r['cpu_vec']:.0f}× | {r['t_quad']:.2f} | "
              f"{r['cpu_quad']:.2f} | {r['speedup_quad']:.1f}× | {r['max_rel']:.1e} | {r['scale_rel']:.1e} |"
              for r in result["rows"]]
    cal = result["calibration"]
    if cal["draws"]:
        low, high = cal["band"]
        lines += ["", f"H0 calibration: n = m = {cal['n']}, d = {cal['d']}, B = {cal['B']}, {cal['draws']} "
                  "independent draws, α = 0.05", "",
                  "| rejections | false-positive rate | 99 % binomial band (count) | inside |", "|---:|---:|---:|:---|",
                  f"| {cal['rejected']} | {cal['rejected'] / cal['draws']:.4f} | [{low}, {high}] | "
                  f"{low <= cal['rejected'] <= high} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 784])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--loop-perms", type=int, default=50, help="permutations the loop is timed on")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings of permutation_test")
    parser.add_argument("--draws", type=int, default=2000, help="H0 draws for the calibration table")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "N", "D"), help=argparse.SUPPRESS)
    doctables.add_result_options(parser, RESULTS)
    args = parser.parse_args()
    if args.one:
        kind, n, d = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(one(kind, n, d, args.permutations, args.loop_perms, args.repeat)))
        return
    doctables.record_and_render(args, run, table, "shift_speed")


if __name__ == "__main__":
    main()
