r"""Adaptation losses that pull source and target representations together during training.

``mmd_loss`` is the multi-kernel MMD of DAN (Long et al., 2015): the unbiased MMD² averaged over Gaussian
kernels of fixed bandwidths. Bandwidths are chosen once per fit (``kernel_bandwidths``) and never
re-estimated per batch, so the loss is the same function from the first step to the last.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from torchtransfer.shift import median_bandwidth

BANDWIDTH_MULTIPLIERS = (0.5, 1.0, 2.0)


def kernel_bandwidths(features: Tensor, seed: int = 0) -> tuple[float, ...]:
    """Median-heuristic bandwidth of ``features`` (N, d) times (0.5, 1, 2)."""
    base = median_bandwidth(features.detach(), seed)
    return tuple(base * k for k in BANDWIDTH_MULTIPLIERS)


def mmd_loss(source: Tensor, target: Tensor, bandwidths: Sequence[float]) -> Tensor:
    r"""Differentiable unbiased MMD² under the mean of Gaussian kernels.

    .. math:: \frac{1}{|L|}\sum_{l \in L} \widehat{\mathrm{MMD}}^2_{k_l}(S, T)

    Args:
        source: Source features, shape (m, d), m ≥ 2.
        target: Target features, shape (n, d), n ≥ 2; n may differ from m.
        bandwidths: Fixed kernel widths ``l``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = torch.randn(64, 8, generator=g)
        >>> bool(mmd_loss(s, s + 2.0, [4.0]) > mmd_loss(s, torch.randn(64, 8, generator=g), [4.0]))
        True
    """
    m, n = len(source), len(target)
    z = torch.cat([source, target])  # (m + n, d)
    d2 = torch.cdist(z, z).pow(2)
    k = torch.stack([torch.exp(-d2 / (2 * l**2)) for l in bandwidths]).mean(0)  # (m + n, m + n)
    k_xx = (k[:m, :m].sum() - k[:m, :m].diagonal().sum()) / (m * (m - 1))
    k_yy = (k[m:, m:].sum() - k[m:, m:].diagonal().sum()) / (n * (n - 1))
    return k_xx + k_yy - 2 * k[:m, m:].mean()
