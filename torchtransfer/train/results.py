"""What training returns: per-epoch ``EpochStats`` and the run's ``FitResult``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_acc: float | None
    lr: float = 0.0


@dataclass(frozen=True)
class FitResult:
    history: tuple[EpochStats, ...]
    best_epoch: int
    best_val_acc: float | None
    stopped_early: bool = False
