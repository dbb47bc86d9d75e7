"""Trunk features in eval mode, the one implementation the learner, the feature cache and the shift
analysis share."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def to_device(x: Tensor, device: torch.device) -> Tensor:
    """``x`` on ``device``; channels_last on CUDA (faster convolutions)."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


@torch.no_grad()
def trunk_features(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device,
                   limit: int | None = None) -> Tensor:
    """Features (N, d) on the CPU of the images of ``(x, y)`` batches (at most ``limit``), model in eval mode."""
    model.eval()
    out, seen = [], 0
    for x, _ in batches:
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            out.append(model.features(to_device(x, device)).float().cpu())
        seen += len(x)
        if limit is not None and seen >= limit:
            break
    return torch.cat(out)[:limit]
