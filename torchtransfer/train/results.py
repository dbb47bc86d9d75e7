"""What training returns: per-epoch ``EpochStats`` and the run's ``FitResult``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EpochStats:
    """One epoch: the training loss, the labelled validation accuracy (None without labelled validation
    images), the last lr, and — with a selector — the selection ``score`` and every validator's value."""

    epoch: int
    train_loss: float
    val_acc: float | None
    lr: float = 0.0
    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def objective(self) -> float | None:
        """What model selection maximises: the selector's score, else the validation accuracy."""
        return self.score if self.score is not None else self.val_acc


@dataclass(frozen=True)
class FitResult:
    history: tuple[EpochStats, ...]
    best_epoch: int
    best_val_acc: float | None
    stopped_early: bool = False
    best_score: float | None = None  # the objective at the best epoch (= best_val_acc without a selector)

    @property
    def best(self) -> EpochStats | None:
        """The stats of the restored epoch."""
        return next((s for s in self.history if s.epoch == self.best_epoch), None)
