"""The one place that turns the config's ``device`` (``auto`` | ``cpu`` | ``cuda``) into a ``torch.device``."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use cpu or auto")
    return torch.device(device)
