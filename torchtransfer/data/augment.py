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


# --------------------------------------------------------------------------- strong (RandAugment-like) view
PHOTOMETRIC = ("identity", "autocontrast", "brightness", "contrast", "sharpness", "solarize", "posterize")
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
STRONG_OPS = PHOTOMETRIC + GEOMETRIC


def _photometric(name: str, x: Tensor, m: Tensor) -> Tensor:
    """One op on images (k, C, H, W) in [0, 1] at magnitudes ``m`` (k,) in [0, 1)."""
    m = m.view(-1, 1, 1, 1)
    if name == "autocontrast":
        lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(1e-3)
    if name == "brightness":  # factor 0.5..1.5 towards black / brighter
        return x * (0.5 + m)
    if name == "contrast":  # blend with the image mean, factor 0.5..1.5
        mean = x.mean((1, 2, 3), keepdim=True)
        return mean + (x - mean) * (0.5 + m)
    if name == "sharpness":  # blend with a 3×3 blur, factor 0..2 (0: blurred)
        blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return blur + (x - blur) * (2 * m)
    if name == "solarize":  # invert pixels above a threshold 1..0.5
        return torch.where(x >= 1 - 0.5 * m, 1 - x, x)
    if name == "posterize":  # 16..2 grey levels
        levels = (16 - 14 * m).round()
        return torch.floor(x * levels) / (levels - 1).clamp_min(1)
    return x


def rand_augment(x: Tensor, gen: torch.Generator, n_ops: int = 2, cutout: float = 0.5) -> Tensor:
    """FixMatch's strong view for small grayscale images, in torch (Cubuk et al., RandAugment, 2020; Sohn et
    al., FixMatch, 2020): per image ``n_ops`` ops drawn uniformly from ``STRONG_OPS``, each at a random
    magnitude (rotation ±30°, shear ±0.3, translation ±30 % of the size, the photometric factors of
    ``_photometric``), then Cutout of a random square with side up to ``cutout`` × the size, filled grey.

    Args:
        x: (N, C, H, W) in [0, 1].
        gen: every random draw comes from it.

    Example:
        >>> x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        >>> y = rand_augment(x, torch.Generator().manual_seed(1))
        >>> y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1 and not torch.equal(x, y)
        True
    """
    n, _, h, w = x.shape
    ops = torch.randint(len(STRONG_OPS), (n, n_ops), generator=gen)  # (N, n_ops)
    mag = torch.rand(n, n_ops, generator=gen)
    sign = torch.randint(0, 2, (n, n_ops), generator=gen).float() * 2 - 1
    signed = sign * mag
    geo = {name: ((ops == STRONG_OPS.index(name)).float() * signed).sum(1) for name in GEOMETRIC}  # (N,) each
    angle = geo["rotate"] * math.radians(30)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = 0.3 * geo["shear_x"], 0.3 * geo["shear_y"]
    tx, ty = 0.6 * geo["translate_x"], 0.6 * geo["translate_y"]  # normalised coords span 2
    theta = torch.stack([torch.stack([cos + sx * sin, -sin + sx * cos, tx], 1),
                         torch.stack([sin + sy * cos, cos - sy * sin, ty], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    for j in range(n_ops):
        for k, name in enumerate(PHOTOMETRIC[1:], start=1):
            pick = ops[:, j] == k
            if bool(pick.any()):
                x[pick] = _photometric(name, x[pick], mag[pick, j].to(x)).clamp(0, 1)
    side = (torch.rand(n, generator=gen) * cutout * min(h, w)).round()  # (N,)
    cy, cx = torch.rand(n, generator=gen) * h, torch.rand(n, generator=gen) * w
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    hole = ((rows - cy.view(-1, 1, 1)).abs() < side.view(-1, 1, 1) / 2) & \
           ((cols - cx.view(-1, 1, 1)).abs() < side.view(-1, 1, 1) / 2)  # (N, H, W)
    return torch.where(hole.unsqueeze(1).to(x.device), torch.full_like(x, 0.5), x)


@dataclass(frozen=True)
class RandAugment:
    """Strong-augmentation settings (``rand_augment``): ``n_ops`` ops per image, Cutout up to ``cutout``."""

    n_ops: int = 2
    cutout: float = 0.5

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        return rand_augment(x, gen, self.n_ops, self.cutout)
