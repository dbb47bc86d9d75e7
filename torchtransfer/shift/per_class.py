"""Per-class MMD²: the shift of each class's conditional distribution, with one bandwidth for all classes."""

from __future__ import annotations

import torch

from torchtransfer.shift.mmd import ArrayLike, Bandwidth, _pair, bandwidths, mmd2


def class_conditional_mmd(x: ArrayLike, y: ArrayLike, labels_x: ArrayLike, labels_y: ArrayLike, *,
                          bandwidth: Bandwidth = None, seed: int = 0) -> dict[int, float]:
    """Unbiased MMD² between x | c and y | c for each class c with ≥ 2 labelled samples on both sides.

    One bandwidth serves every class (the median heuristic on the pooled labelled sample, unless given), so
    the per-class values are comparable. Labels < 0 mark unlabelled rows and are ignored.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(40, 2, generator=g), torch.randn(40, 2, generator=g)
        >>> lab = torch.arange(40) % 2
        >>> y[lab == 1] += 3.0  # only class 1 moves
        >>> per = class_conditional_mmd(x, y, lab, lab, bandwidth=1.0)
        >>> per[1] > 0.3 > abs(per[0])
        True
    """
    x, y = _pair(x, y)
    lx, ly = torch.as_tensor(labels_x).reshape(-1), torch.as_tensor(labels_y).reshape(-1)
    if len(lx) != len(x) or len(ly) != len(y):
        raise ValueError(f"labels: expected {len(x)} and {len(y)} labels, got {len(lx)} and {len(ly)}")
    lx, ly = lx.to(x.device), ly.to(y.device)
    keep_x, keep_y = lx >= 0, ly >= 0
    ls = bandwidths(bandwidth, torch.cat([x[keep_x], y[keep_y]]), seed)
    classes = sorted(set(lx[keep_x].tolist()) & set(ly[keep_y].tolist()))
    return {int(c): mmd2(x[lx == c], y[ly == c], bandwidth=ls) for c in classes
            if int((lx == c).sum()) >= 2 and int((ly == c).sum()) >= 2}
