"""Batch augmentation drawn from an explicit ``torch.Generator`` (so a seed fixes it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def random_affine(x: Tensor, gen: torch.Generator, degrees: float = 15.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """Per-image random rotation, scaling and translation of a batch (N, C, H, W), zero padding.

    Example:
        >>> x = torch.zeros(4, 1, 8, 8)
        >>> random_affine(x, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 8, 8])
    """
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(n, generator=gen) * (scale[1] - scale[0])
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 2 * translate  # normalised coords span 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@dataclass(frozen=True)
class Affine:
    """Random-affine settings: rotation ±``degrees``, shift ±``translate`` (fraction of the size), zoom in
    ``scale`` (< 1 shrinks the digit, > 1 enlarges it)."""

    degrees: float = 15.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        return random_affine(x, gen, self.degrees, self.translate, self.scale)


def as_augment(augment: bool | Affine) -> Affine | None:
    """``True`` → the default ``Affine()``; ``False`` → None; an ``Affine`` as is."""
    if isinstance(augment, Affine):
        return augment
    return Affine() if augment else None
