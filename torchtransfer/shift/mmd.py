r"""Domain shift as the squared Maximum Mean Discrepancy (MMD²), with a fast permutation test.

Kernel, pinned: :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 l^2))` with bandwidth :math:`l`; a sequence of
bandwidths gives the multi-kernel :math:`k = \frac{1}{|L|}\sum_{l\in L} k_l` (so :math:`k(x, x) = 1` always).
Median heuristic, pinned: :math:`l^2 = \mathrm{median}_{i<j} \lVert z_i - z_j\rVert^2 / 2` over distinct
pairs of the pooled sample :math:`z = x \cup y` (a seeded subsample of at most 1,000 points).
p-value, pinned: :math:`p = (1 + \#\{b : \mathrm{null}_b \ge \mathrm{observed}\}) / (1 + B)`.

The permutation test never materialises more than ``memory_budget`` bytes of kernel matrix: it walks row
blocks of the pooled kernel K (N × N, N = m + n) and evaluates every permutation of a chunk at once as
one matrix product K_R W (W: N × B 0/1 masks), so n + m = 20,000 runs in about 1 GB. Several kernels
(the aggregated test's bandwidths) share each block's squared distances and one stacked product with W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from torchtransfer.progress import track

MEDIAN_SUBSAMPLE = 1000
MEMORY_BUDGET = 2**28  # bytes of float64 per working block (256 MiB)
RNG_BLOCK = 128  # permutations drawn per RNG call: results do not depend on the memory budget
ESTIMATORS = ("unbiased", "biased", "linear")
Estimator = Literal["unbiased", "biased", "linear"]
Bandwidth = float | Sequence[float] | None
ArrayLike = Tensor | np.ndarray
Kernels = tuple[tuple[float, ...], ...]  # K kernels, each the mean of Gaussians over its bandwidths


@dataclass(frozen=True)
class MMDResult:
    """Observed MMD², its permutation p-value, the bandwidth(s) ``l`` used and the permutation null (B,)."""

    mmd2: float
    p_value: float
    bandwidth: float | tuple[float, ...]
    n_permutations: int
    n_source: int
    n_target: int
    estimator: str = "unbiased"
    seed: int = 0
    null: tuple[float, ...] = field(default=(), repr=False)
    test: str = "median"  # "aggregated": see torchtransfer.shift.aggregated


def as_matrix(a: ArrayLike, name: str = "samples") -> Tensor:
    """(N, ...) numpy or torch → (N, D) float64 torch (images are flattened); rejects NaN/inf."""
    t = torch.as_tensor(a)
    if t.ndim < 2:
        raise ValueError(f"{name}: expected shape (N, D) or (N, C, H, W), got {tuple(t.shape)}")
    t = t.reshape(t.shape[0], -1).to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


def _pair(x: ArrayLike, y: ArrayLike, least: int = 2) -> tuple[Tensor, Tensor]:
    x, y = as_matrix(x, "source"), as_matrix(y, "target")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"source and target have different dimensions: {x.shape[1]} vs {y.shape[1]}")
    if len(x) < least or len(y) < least:
        raise ValueError(f"MMD² needs at least {least} samples per side, got {len(x)} and {len(y)}")
    return x, y.to(x.device)


def median_bandwidth(z: ArrayLike, seed: int = 0) -> float:
    r"""Median heuristic :math:`l = \sqrt{\mathrm{median}_{i<j}\lVert z_i - z_j\rVert^2 / 2}`.

    Example:
        >>> z = torch.tensor([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4 → median 4
        >>> median_bandwidth(z) == 2.0 ** 0.5
        True
    """
    z = as_matrix(z)
    if len(z) > MEDIAN_SUBSAMPLE:
        pick = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:MEDIAN_SUBSAMPLE]
        z = z[pick.to(z.device)]
    d2 = sq_dists(z, z)  # (N, N)
    upper = d2[torch.triu_indices(len(z), len(z), offset=1, device=z.device).unbind()]
    med = float(upper.median())
    if med <= 0:
        raise ValueError("all samples are identical; the median heuristic needs distinct points")
    return (med / 2) ** 0.5


def bandwidths(bandwidth: Bandwidth, z: Tensor, seed: int = 0) -> tuple[float, ...]:
    """``l`` as a tuple: the median heuristic for None, a float → (l,), a sequence as given (all > 0)."""
    if bandwidth is None:
        return (median_bandwidth(z, seed),)
    ls = (float(bandwidth),) if isinstance(bandwidth, int | float) else tuple(float(b) for b in bandwidth)
    if not ls or not all(np.isfinite(l) and l > 0 for l in ls):
        raise ValueError(f"bandwidth: expected a positive number or a non-empty sequence of them, got {bandwidth!r}")
    return ls


def sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """‖a_i − b_j‖² via the Gram matrix; (r, d), (N, d) → (r, N), clamped at 0."""
    d2 = (a @ b.T).mul_(-2).add_(a.pow(2).sum(1, keepdim=True)).add_(b.pow(2).sum(1))  # (r, N), one buffer
    return d2.clamp_min_(0)


def _kernel_into(d2: Tensor, ls: tuple[float, ...], out: Tensor) -> Tensor:
    """mean_l exp(−d2 / (2 l²)) written into ``out`` (same shape as d2); d2 is left as it is."""
    if len(ls) == 1:
        return torch.mul(d2, -0.5 / ls[0] ** 2, out=out).exp_()
    out.zero_()
    for l in ls:
        out += torch.exp(d2 * (-0.5 / l**2))
    return out.div_(len(ls))


def gaussian_kernel(a: Tensor, b: Tensor, bandwidth: float | Sequence[float]) -> Tensor:
    """k(a_i, b_j) = mean_l exp(−‖a_i − b_j‖² / (2 l²)); (r, d), (N, d) → (r, N)."""
    d2 = sq_dists(a, b)
    return _kernel_into(d2, bandwidths(bandwidth, a), d2)  # in place: one buffer


def _quadratic_sums(z: Tensor, kernels: Kernels, w: Tensor, budget: int) -> tuple[Tensor, Tensor]:
    """Row sums r = K̃ 1 (K, N) and q = diag(Wᵀ K̃ W) (K, B) for each of the K kernels, K̃ with its
    diagonal zeroed. Each row block's squared distances are computed once and serve every kernel; the
    K kernel blocks are stacked into one (K·rows, N) matrix, so one product with W covers them all.

    Memory is O(budget + K·N·B), never O(N²): rows = budget / (8 N (K + 1)) per block.
    """
    n_total, n_k = len(z), len(kernels)
    rows = max(1, budget // (8 * n_total * (n_k + 1)))
    r = z.new_empty(n_k, n_total)
    q = w.new_zeros(n_k, w.shape[1])
    for start in range(0, n_total, rows):
        block = z[start: start + rows]  # (rows, d)
        d2 = sq_dists(block, z)  # (rows, N)
        k = d2.new_empty(n_k, len(block), n_total)  # (K, rows, N)
        for i, ls in enumerate(kernels):
            _kernel_into(d2, ls, k[i])
        k.diagonal(offset=start, dim1=1, dim2=2).zero_()  # entries (i, start + i): k(z_i, z_i)
        r[:, start: start + len(block)] = k.sum(2)
        kw = (k.reshape(n_k * len(block), n_total) @ w).reshape(n_k, len(block), -1)  # (K, rows, B)
        q += (kw * w[start: start + len(block)]).sum(1)
    return r, q


def _statistic(r: Tensor, q: Tensor, w: Tensor, m: int, n: int, estimator: str) -> Tensor:
    """MMD² (K, B) per kernel and column of W from s_xx = q, s_xy = r W − q, s_yy = r 1 − s_xx − 2 s_xy
    (diagonals excluded); r (K, N), q (K, B)."""
    s_xx = q
    s_xy = r @ w - s_xx
    s_yy = r.sum(1, keepdim=True) - s_xx - 2 * s_xy
    if estimator == "unbiased":
        return s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2 * s_xy / (m * n)
    return (s_xx + m) / m**2 + (s_yy + n) / n**2 - 2 * s_xy / (m * n)  # biased: k(z, z) = 1 on the diagonal


def _check_estimator(estimator: str, allowed: Sequence[str] = ESTIMATORS) -> None:
    if estimator not in allowed:
        raise ValueError(f"estimator: expected one of {', '.join(allowed)}, got {estimator!r}")


def _identity_mask(m: int, n: int, like: Tensor) -> Tensor:
    w = like.new_zeros(m + n, 1)  # (N, 1): 1 marks the source rows
    w[:m] = 1.0
    return w


def _linear(x: Tensor, y: Tensor, ls: tuple[float, ...]) -> float:
    """Gretton et al. (2012, §6) linear-time MMD² over the first 2⌊min(m, n)/2⌋ rows of each side."""
    half = min(len(x), len(y)) // 2
    x1, x2, y1, y2 = x[0: 2 * half: 2], x[1: 2 * half: 2], y[0: 2 * half: 2], y[1: 2 * half: 2]  # (half, d)

    def k(a: Tensor, b: Tensor) -> Tensor:  # paired kernel k(a_i, b_i), (half,)
        d2 = (a - b).pow(2).sum(1)
        return torch.stack([torch.exp(-d2 / (2 * l**2)) for l in ls]).mean(0)

    return float((k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).mean())


def mmd2(x: ArrayLike, y: ArrayLike, *, bandwidth: Bandwidth = None, estimator: Estimator = "unbiased",
         seed: int = 0, memory_budget: int = MEMORY_BUDGET) -> float:
    r"""Squared MMD between samples x and y.

    .. math:: \mathrm{unbiased} = \frac{\sum_{i\ne j} k(x_i,x_j)}{m(m-1)} + \frac{\sum_{i\ne j} k(y_i,y_j)}{n(n-1)}
              - \frac{2}{mn}\sum_{i,j} k(x_i,y_j)

    ``biased`` (V-statistic) keeps the diagonals and divides by m², n²; ``linear`` averages
    :math:`h_i = k(x_{2i},x_{2i+1}) + k(y_{2i},y_{2i+1}) - k(x_{2i},y_{2i+1}) - k(x_{2i+1},y_{2i})`.

    Args:
        x: Source samples, shape (m, d) or images (m, C, H, W); numpy or torch.
        y: Target samples, shape (n, d) or images; n may differ from m.
        bandwidth: ``l``; a sequence for the multi-kernel mean; None for the median heuristic.
        estimator: ``unbiased`` (U-statistic), ``biased`` (V-statistic) or ``linear`` (linear time).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
        >>> mmd2(x, y + 1.0) > 0.1 > abs(mmd2(x, y))
        True
    """
    _check_estimator(estimator)
    x, y = _pair(x, y)
    z = torch.cat([x, y])  # (m + n, d)
    ls = bandwidths(bandwidth, z, seed)
    if estimator == "linear":
        return _linear(x, y, ls)
    w = _identity_mask(len(x), len(y), z)
    r, q = _quadratic_sums(z, (ls,), w, memory_budget)
    return float(_statistic(r, q, w, len(x), len(y), estimator)[0, 0])


def mmd2_unbiased(x: ArrayLike, y: ArrayLike, bandwidth: Bandwidth = None) -> float:
    """The unbiased MMD² (kept for callers of the first API): ``mmd2(x, y, bandwidth=bandwidth)``."""
    return mmd2(x, y, bandwidth=bandwidth)


def permutation_masks(n_total: int, m: int, count: int, gen: torch.Generator) -> Tensor:
    """``count`` random splits as 0/1 columns, (N, count): each marks m of the N pooled rows as "source".

    Row b keeps the m smallest of N uniform float64 keys (a uniform random m-subset); a tie at the
    threshold (probability about N·2⁻⁵³) falls back to an argsort for that row.
    """
    keys = torch.rand(count, n_total, generator=gen, dtype=torch.float64)  # (count, N)
    masks = keys <= keys.kthvalue(m, dim=1, keepdim=True).values
    tied = (masks.sum(1) != m).nonzero().squeeze(1)
    if len(tied):
        masks[tied] = torch.zeros_like(masks[tied]).scatter_(1, keys[tied].argsort(dim=1)[:, :m], True)
    return masks.T.to(torch.float64)


def permuted_statistics(z: Tensor, m: int, kernels: Kernels, n_permutations: int, seed: int,
                        estimator: str = "unbiased", memory_budget: int = MEMORY_BUDGET) -> Tensor:
    """MMD² of the observed split and of ``n_permutations`` random splits, for every kernel: (K, 1 + B).

    z (N, d) pools the m source rows (first) and the N − m target rows. All permutations of a chunk are
    evaluated at once: with W (N, B) the 0/1 masks of the permuted "source" rows, s_xx = diag(Wᵀ K̃ W),
    s_xy = Wᵀ K̃ 1 − s_xx and s_yy = 1ᵀ K̃ 1 − s_xx − 2 s_xy. The observed split is column 0, so it goes
    through exactly the same arithmetic. The splits come from ``seed`` in fixed blocks of 128, independent
    of ``memory_budget`` and of the kernels: every kernel sees the same permutations.
    """
    n_total = len(z)
    per_pass = max(RNG_BLOCK, (memory_budget // (8 * n_total)) // RNG_BLOCK * RNG_BLOCK)
    gen = torch.Generator().manual_seed(seed)
    stats, done = [], 0
    with track("permutations", total=n_permutations) as bar:
        while True:
            count = min(per_pass, n_permutations - done)
            blocks = [permutation_masks(n_total, m, min(RNG_BLOCK, count - i), gen)
                      for i in range(0, count, RNG_BLOCK)]
            first = [_identity_mask(m, n_total - m, z).cpu()] if done == 0 else []  # masks come from the CPU
            w = torch.cat(first + blocks, dim=1).to(z.device)  # (N, count [+ 1])
            r, q = _quadratic_sums(z, kernels, w, memory_budget)
            stats.append(_statistic(r, q, w, m, n_total - m, estimator).cpu())
            done += count
            bar.advance(count)
            if done >= n_permutations:
                break
    return torch.cat(stats, dim=1)


def _check_permutations(n_permutations: int) -> None:
    if n_permutations < 0:
        raise ValueError(f"n_permutations: must be ≥ 0, got {n_permutations}")


def permutation_test(x: ArrayLike, y: ArrayLike, *, n_permutations: int = 1000, bandwidth: Bandwidth = None,
                     seed: int = 0, estimator: Estimator = "unbiased",
                     memory_budget: int = MEMORY_BUDGET) -> MMDResult:
    """MMD² and its permutation p-value, p = (1 + #{null ≥ observed}) / (1 + B).

    The statistics come from :func:`permuted_statistics` (one kernel: ``bandwidth``, or the median
    heuristic). A null value within 1e-12 (relative) of the observed one counts as a tie, i.e. as exceeding it.
    """
    _check_estimator(estimator, ("unbiased", "biased"))
    _check_permutations(n_permutations)
    x, y = _pair(x, y)
    z = torch.cat([x, y])  # (N, d), N = m + n
    ls = bandwidths(bandwidth, z, seed)
    all_stats = permuted_statistics(z, len(x), (ls,), n_permutations, seed, estimator, memory_budget)[0]
    observed, null = float(all_stats[0]), all_stats[1:]
    exceed = int((null >= observed - 1e-12 * abs(observed)).sum())  # ties count as exceeding
    return MMDResult(observed, (1 + exceed) / (1 + n_permutations), ls[0] if len(ls) == 1 else ls,
                     n_permutations, len(x), len(y), estimator, seed, tuple(null.tolist()))
