r"""The aggregated MMD test: a collection of bandwidths, the level corrected over the collection by permutations.

Why: the median heuristic fixes one bandwidth from the pooled sample's scale, which is the wrong scale for a
subtle shift (a small rotation, a new class mix); MMDAgg (Schrab et al., "MMD Aggregated Two-Sample Test",
JMLR 24, 2023) tests a whole collection of bandwidths at once and keeps the level α over the collection.

Collection, pinned: :math:`L = \{\, l_{\mathrm{med}} \cdot s : s \in S \,\}` with :math:`l_{\mathrm{med}}`
the median heuristic of :func:`torchtransfer.shift.mmd.median_bandwidth` and the scales
:math:`S` = ``AGGREGATED_SCALES`` (:math:`2^{-2}, 2^{-1.5}, \dots, 2^{1}`; 1 must be among them).

Level correction, pinned (a min-p test calibrated by the same permutations). For each bandwidth
:math:`l` and each of the B + 1 splits :math:`b` (b = 0 the observed one, then B random ones), the
single-kernel permutation p-value of that split among all of them,

.. math:: \hat p_l(b) = \frac{\#\{b' : T_l(b') \ge T_l(b)\}}{B + 1}, \qquad
          V(b) = \min_l \hat p_l(b) - \frac{\sigma(\max_l z_l(b))}{B + 1}, \qquad
          P = \frac{\#\{b : V(b) \le V(0)\}}{B + 1},

where :math:`z_l(b)` is :math:`T_l(b)` standardised by the mean and standard deviation of
:math:`T_l` over the B + 1 splits and σ the logistic function: a split's min-p decides, and among splits
with the same min-p (frequent: every kernel's largest statistic has p̂ = 1/(B + 1), and neighbouring
bandwidths agree) the larger standardised statistic is the more significant. Without that tie-break, ties
count against the observed split and the test is conservative at small B. Measured: 5.6 % rejections at
α = 5 % on 2,000 Gaussian H0 draws (B = 99); on the MNIST H0 of ``benchmarks/shift_power.py``
(B = 200) 2.8–3.6 % on features and 2.4–5.0 % on pixels (the tie-break measured on the earlier
feature run: 2.4–3.0 % without it, 2.8–3.4 % with it), inside the 99 % binomial band or just under it: low.

With uniform weights, MMDAgg rejects iff :math:`\min_l \hat p_l(0) \le \hat u_\alpha / |L|`, where
:math:`\hat u_\alpha` is found by a bisection on a *second* set of B₂ permutations so that the estimated
probability of any single test rejecting is ≤ α, i.e. iff the observed min-p lies at or below the α-quantile
of the min-p's permutation distribution. Here that distribution is read off the *same* B + 1 splits: they
are exchangeable under H0 (the identity plus B uniform random splits; Hemerik & Goeman, 2018) and every
:math:`\hat p_l(b)` is a symmetric function of the whole set, so the rank of the observed min-p is
super-uniform and :math:`\Pr_{H_0}(P \le \alpha) \le \alpha` for any B and any collection (V is
continuous, so the level is :math:`\lfloor \alpha (B + 1) \rfloor / (B + 1)`, e.g. 4.98 % for B = 200). Why this rather
than the bisection: it halves the permutations (one set instead of B₁ + B₂), needs no bisection, and gives a
p-value, which the flow logs and steers on (MMDAgg gives only reject / not at one α).

Cost: the squared distances of each kernel row block are computed once and serve every bandwidth, and one
stacked product with the permutation masks covers all of them (:func:`torchtransfer.shift.mmd.permuted_statistics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from torchtransfer.names import SHIFT_TESTS
from torchtransfer.shift.mmd import (
    MEMORY_BUDGET,
    ArrayLike,
    Bandwidth,
    MMDResult,
    _check_permutations,
    _pair,
    median_bandwidth,
    permutation_test,
    permuted_statistics,
)

AGGREGATED_SCALES = tuple(2.0 ** (k / 2) for k in range(-4, 3))  # l_med × 2^-2 … 2^1, a factor √2 apart
TESTS = SHIFT_TESTS  # torchtransfer.names
ShiftTest = Literal["median", "aggregated"]
TIE_RTOL = 1e-12  # statistics within this (relative) of each other count as ties, i.e. as exceeding


@dataclass(frozen=True)
class AggregatedResult(MMDResult):
    """The aggregated test. ``p_value`` is the corrected P; ``mmd2``, ``bandwidth`` and ``null`` are those of
    the median bandwidth (scale 1), so ``mmd2`` means the same under either test. ``bandwidths``, ``mmd2s``
    and ``p_values`` give each bandwidth of the collection, its MMD² and its own (uncorrected) p-value."""

    bandwidths: tuple[float, ...] = ()
    mmd2s: tuple[float, ...] = ()
    p_values: tuple[float, ...] = ()


def split_p_counts(stats: Tensor) -> Tensor:
    r"""(K, 1 + B) statistics → (K, 1 + B) integer counts :math:`\#\{b' : T_k(b') \ge T_k(b)\}` (ties included).

    Example:
        >>> split_p_counts(torch.tensor([[3.0, 1.0, 2.0, 3.0]])).tolist()
        [[2, 4, 3, 2]]
    """
    ordered = stats.sort(dim=1).values  # (K, 1 + B), ascending
    below = torch.searchsorted(ordered, stats - TIE_RTOL * stats.abs(), side="left")  # values < T_k(b) − tie
    return stats.shape[1] - below


def split_scores(stats: Tensor) -> Tensor:
    r"""(K, 1 + B) statistics → (1 + B,) scores V(b) × (B + 1): a split's smallest count, less the logistic of
    its largest standardised statistic (in (0, 1): it only orders splits with the same smallest count).

    Example:
        >>> stats = torch.tensor([[6.0, 1.0, 2.0, 3.0], [0.0, 4.0, 1.0, 2.0]])  # counts [1 4 3 2], [4 1 3 2]
        >>> [round(v, 3) for v in split_scores(stats).tolist()]  # splits 0 and 1 both reach count 1
        [0.2, 0.211, 2.608, 1.463]
    """
    mean, sd = stats.mean(1, keepdim=True), stats.std(1, keepdim=True).clamp_min(torch.finfo(stats.dtype).tiny)
    z = ((stats - mean) / sd).max(dim=0).values  # (1 + B,)
    return split_p_counts(stats).min(dim=0).values - torch.sigmoid(z)


def min_p_value(stats: Tensor) -> float:
    r"""The corrected p-value P of the observed split (column 0) from (K, 1 + B) statistics; see the module.

    Example:
        >>> stats = torch.tensor([[6.0, 1.0, 2.0, 3.0], [0.0, 4.0, 1.0, 2.0]])
        >>> min_p_value(stats)  # split 1 ties split 0 on the smallest count, with a smaller standardised maximum
        0.25
    """
    if stats.shape[1] == 1:  # B = 0: only the observed split, nothing to compare with
        return 1.0
    v = split_scores(stats)  # (1 + B,)
    return float((v <= v[0] + TIE_RTOL * v[0].abs()).sum()) / stats.shape[1]


def _check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    scales = tuple(float(s) for s in scales)
    if not scales or not all(s > 0 for s in scales) or 1.0 not in scales:
        raise ValueError(f"scales: expected positive multiples of the median bandwidth including 1.0, got {scales!r}")
    return scales


def aggregated_test(x: ArrayLike, y: ArrayLike, *, n_permutations: int = 1000,
                    scales: Sequence[float] = AGGREGATED_SCALES, seed: int = 0,
                    memory_budget: int = MEMORY_BUDGET) -> AggregatedResult:
    """MMDAgg-style test of x (m, ...) vs y (n, ...) over the bandwidths l_med × ``scales``; see the module.

    The same seed gives the same splits as :func:`torchtransfer.shift.mmd.permutation_test`, so the two
    tests see identical permutations.

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> x, y = torch.randn(60, 3, generator=g), torch.randn(60, 3, generator=g)
        >>> aggregated_test(x, y + 1.0, n_permutations=99).p_value, aggregated_test(x, y, n_permutations=99).p_value
        (0.01, 0.63)
    """
    scales = _check_scales(scales)
    _check_permutations(n_permutations)
    x, y = _pair(x, y)
    z = torch.cat([x, y])  # (N, d), N = m + n
    l_med = median_bandwidth(z, seed)
    ls = tuple(l_med * s for s in scales)
    stats = permuted_statistics(z, len(x), tuple((l,) for l in ls), n_permutations, seed, "unbiased",
                                memory_budget)  # (K, 1 + B)
    ref = scales.index(1.0)
    own_p = split_p_counts(stats)[:, 0].double() / stats.shape[1]  # (K,)
    return AggregatedResult(
        float(stats[ref, 0]), min_p_value(stats), ls[ref], n_permutations, len(x), len(y), "unbiased", seed,
        tuple(stats[ref, 1:].tolist()), test="aggregated", bandwidths=ls, mmd2s=tuple(stats[:, 0].tolist()),
        p_values=tuple(own_p.tolist()))


def two_sample_test(x: ArrayLike, y: ArrayLike, *, test: str = "median", n_permutations: int = 1000,
                    bandwidth: Bandwidth = None, seed: int = 0) -> MMDResult:
    """``test`` ∈ TESTS: ``median`` → :func:`permutation_test` (``bandwidth``, or the median heuristic);
    ``aggregated`` → :func:`aggregated_test` (its own collection: ``bandwidth`` must be None)."""
    check_test(test, bandwidth)
    if test == "median":
        return permutation_test(x, y, n_permutations=n_permutations, bandwidth=bandwidth, seed=seed)
    return aggregated_test(x, y, n_permutations=n_permutations, seed=seed)


def check_test(test: str, bandwidth: Bandwidth = None) -> None:
    """ValueError unless ``test`` is one of TESTS and, for ``aggregated``, no bandwidth is given."""
    if test not in TESTS:
        raise ValueError(f"test: expected one of {', '.join(TESTS)}, got {test!r}")
    if test == "aggregated" and bandwidth is not None:
        raise ValueError("bandwidth: the aggregated test builds its own collection (median heuristic × scales); "
                         "give no bandwidth, or use the median test")
