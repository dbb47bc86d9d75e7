r"""Domain shift as the squared Maximum Mean Discrepancy (MMD²) with a permutation test.

Kernel, pinned: :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 l^2))` with bandwidth :math:`l`.
Median heuristic, pinned: :math:`l^2 = \mathrm{median}_{i<j} \lVert z_i - z_j\rVert^2 / 2` over distinct
pairs of the pooled sample :math:`z = x \cup y` (a seeded subsample of at most 1,000 points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

MEDIAN_SUBSAMPLE = 1000


@dataclass(frozen=True)
class MMDResult:
    """Observed unbiased MMD², its permutation p-value, and the bandwidth ``l`` used."""

    mmd2: float
    p_value: float
    bandwidth: float
    n_permutations: int
    n_source: int
    n_target: int


def as_matrix(a: Tensor | np.ndarray) -> Tensor:
    """(N, ...) numpy or torch → (N, D) float64 torch (images are flattened)."""
    t = torch.as_tensor(a)
    if t.ndim < 2:
        raise ValueError(f"expected samples of shape (N, D) or (N, C, H, W), got {tuple(t.shape)}")
    return t.reshape(t.shape[0], -1).to(torch.float64)


def median_bandwidth(z: Tensor, seed: int = 0) -> float:
    r"""Median heuristic :math:`l = \sqrt{\mathrm{median}_{i<j}\lVert z_i - z_j\rVert^2 / 2}`.

    Example:
        >>> z = torch.tensor([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4 → median 4
        >>> median_bandwidth(z) == 2.0 ** 0.5
        True
    """
    z = as_matrix(z)
    if len(z) > MEDIAN_SUBSAMPLE:
        pick = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:MEDIAN_SUBSAMPLE]
        z = z[pick]
    d2 = torch.cdist(z, z).pow(2)
    upper = d2[torch.triu_indices(len(z), len(z), offset=1).unbind()]
    med = float(upper.median())
    if med <= 0:
        raise ValueError("all samples are identical; the median heuristic needs distinct points")
    return (med / 2) ** 0.5


def gaussian_kernel(a: Tensor, b: Tensor, bandwidth: float) -> Tensor:
    """k(a_i, b_j) = exp(-‖a_i − b_j‖² / (2 l²)); (m, d), (n, d) → (m, n)."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))


def _mmd2_from_sums(s_xx: Tensor, s_yy: Tensor, s_xy: Tensor, m: int, n: int) -> Tensor:
    """Unbiased MMD² from kernel block sums whose diagonals (k(x, x) = 1) are still included."""
    return (s_xx - m) / (m * (m - 1)) + (s_yy - n) / (n * (n - 1)) - 2 * s_xy / (m * n)


def mmd2_unbiased(x: Tensor | np.ndarray, y: Tensor | np.ndarray, bandwidth: float | None = None) -> float:
    r"""Unbiased squared MMD (U-statistic; diagonal terms excluded; m ≠ n allowed).

    .. math:: \widehat{\mathrm{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i,x_j)
              + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i,y_j) - \frac{2}{mn}\sum_{i,j} k(x_i,y_j)

    Args:
        x: Source samples, shape (m, d) or images (m, C, H, W).
        y: Target samples, shape (n, d) or images.
        bandwidth: Kernel width ``l``; None uses the median heuristic on the pooled sample.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
        >>> mmd2_unbiased(x, y + 1.0) > 0.1 > abs(mmd2_unbiased(x, y))
        True
    """
    x, y = as_matrix(x), as_matrix(y)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD² needs at least 2 samples per side, got {m} and {n}")
    l = bandwidth or median_bandwidth(torch.cat([x, y]))
    s_xx = gaussian_kernel(x, x, l).sum()
    s_yy = gaussian_kernel(y, y, l).sum()
    s_xy = gaussian_kernel(x, y, l).sum()
    return float(_mmd2_from_sums(s_xx, s_yy, s_xy, m, n))


def permutation_test(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    n_permutations: int = 200,
    bandwidth: float | None = None,
    seed: int = 0,
    chunk: int = 64,
) -> MMDResult:
    """Unbiased MMD² and its permutation p-value, p = (1 + #{null ≥ observed}) / (1 + B).

    The pooled kernel matrix K is built once; each permutation is a 0/1 column ``w`` marking the
    "source" half, and a chunk of B columns W (N, B) is evaluated at once:
    s_xx = diag(Wᵀ K W), s_xy = Wᵀ K 1 − s_xx, s_yy = 1ᵀ K 1 − s_xx − 2 s_xy.
    """
    x, y = as_matrix(x), as_matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"source and target have different dimensions: {x.shape[1]} vs {y.shape[1]}")
    m, n = len(x), len(y)
    z = torch.cat([x, y])  # (m + n, d)
    l = bandwidth or median_bandwidth(z, seed)
    k = gaussian_kernel(z, z, l)  # (N, N)
    row_sums, total = k.sum(1), k.sum()
    observed = float(_mmd2_from_sums(k[:m, :m].sum(), k[m:, m:].sum(), k[:m, m:].sum(), m, n))
    gen = torch.Generator().manual_seed(seed)
    exceed = 0
    for start in range(0, n_permutations, chunk):
        b = min(chunk, n_permutations - start)
        order = torch.argsort(torch.rand(b, m + n, generator=gen), dim=1)  # (b, N) random permutations
        w = torch.zeros(b, m + n, dtype=k.dtype).scatter_(1, order[:, :m], 1.0).T  # (N, b)
        s_xx = (w * (k @ w)).sum(0)  # (b,)
        s_xy = w.T @ row_sums - s_xx
        s_yy = total - s_xx - 2 * s_xy
        null = _mmd2_from_sums(s_xx, s_yy, s_xy, m, n)
        exceed += int((null >= observed).sum())
    p_value = (1 + exceed) / (1 + n_permutations)
    return MMDResult(observed, p_value, l, n_permutations, m, n)
