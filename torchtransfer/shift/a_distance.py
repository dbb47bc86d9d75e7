"""Proxy A-distance: how well a linear domain classifier tells two samples apart (Ben-David et al., 2007).

A companion of the MMD² test in :mod:`torchtransfer.shift`: the same inputs ((m, d) and (n, d), numpy or
torch, images flattened), a number on a fixed scale from 0 (indistinguishable) to 2 (separable).
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchtransfer.shift.mmd import ArrayLike, _pair


def _logistic_newton(feats: Tensor, labels: Tensor, l2: float, steps: int) -> Tensor:
    """Weights w (d,) minimising mean BCE(feats @ w, labels) + l2 ‖w‖² by Newton's method; feats (N, d)."""
    w = feats.new_zeros(feats.shape[1])
    eye = torch.eye(feats.shape[1], dtype=feats.dtype, device=feats.device)
    for _ in range(steps):
        p = torch.sigmoid(feats @ w)  # (N,)
        grad = feats.T @ (p - labels) / len(feats) + 2 * l2 * w
        hess = (feats.T * (p * (1 - p))) @ feats / len(feats) + 2 * l2 * eye  # (d, d)
        step = torch.linalg.solve(hess, grad)
        w -= step
        if float(step.abs().max()) < 1e-8:
            break
    return w


def proxy_a_distance(x: ArrayLike, y: ArrayLike, *, seed: int = 0, l2: float = 1e-3, steps: int = 25) -> float:
    r"""Proxy A-distance :math:`2(1 - 2\varepsilon)` of a linear domain classifier (Ben-David et al., 2007).

    A seeded half of each domain trains an L2-regularised logistic regression (features standardised with
    the training half's statistics; Newton's method); ε is its balanced error (mean of the two domains'
    error rates) on the other half, clipped to [0, 0.5]. So 0 means indistinguishable, 2 perfectly separable.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 3, generator=g), torch.randn(200, 3, generator=g)
        >>> proxy_a_distance(x, y + 5.0) > 1.9 and proxy_a_distance(x, y) < 0.5
        True
    """
    x, y = _pair(x, y)
    gen = torch.Generator().manual_seed(seed)
    halves = [torch.randperm(len(s), generator=gen).to(s.device) for s in (x, y)]
    train = [s[p[: len(s) // 2]] for s, p in zip((x, y), halves, strict=True)]
    test = [s[p[len(s) // 2:]] for s, p in zip((x, y), halves, strict=True)]
    xt = torch.cat(train)  # (N_train, d)
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-8)

    def design(t: Tensor) -> Tensor:  # standardised, with a bias column: (N, d + 1)
        return torch.nn.functional.pad((t - mean) / std, (0, 1), value=1.0)

    labels = torch.cat([xt.new_zeros(len(train[0])), xt.new_ones(len(train[1]))])
    w = _logistic_newton(design(xt), labels, l2, steps)
    errors = [float((design(t) @ w > 0).double().mean()) for t in test]  # fraction called "target"
    eps = min(max((errors[0] + (1 - errors[1])) / 2, 0.0), 0.5)  # source wrongly "target", target wrongly "source"
    return 2 * (1 - 2 * eps)
