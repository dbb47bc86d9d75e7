"""The Optuna search space → a frozen ``HParams``. Pure: it asks the trial, and trains nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from torchtransfer.config import FloatRange, IntRange, SearchConfig


class Trial(Protocol):  # the part of optuna.Trial used here
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int) -> int: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class HParams:
    """What one fine-tuning run needs beyond the fixed ``train`` config."""

    lr: float
    weight_decay: float
    epochs: int
    strategy: str
    adaptation_weight: float

    def as_params(self) -> dict[str, Any]:
        """``{"hp.lr": ..., ...}`` for MLflow."""
        return {f"hp.{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HParams:
        return cls(**values)


def _float(trial: Trial, name: str, space: FloatRange) -> float:
    if space.low == space.high:
        return space.low
    return trial.suggest_float(name, space.low, space.high, log=space.log)


def _int(trial: Trial, name: str, space: IntRange) -> int:
    return space.low if space.low == space.high else trial.suggest_int(name, space.low, space.high)


def suggest_hparams(trial: Trial, space: SearchConfig) -> HParams:
    """Ask ``trial`` for one point of ``space``; fixed ranges (low == high) are not asked."""
    strategies = list(space.strategy)
    return HParams(
        lr=_float(trial, "lr", space.lr),
        weight_decay=_float(trial, "weight_decay", space.weight_decay),
        epochs=_int(trial, "epochs", space.epochs),
        strategy=strategies[0] if len(strategies) == 1 else trial.suggest_categorical("strategy", strategies),
        adaptation_weight=_float(trial, "adaptation_weight", space.adaptation_weight),
    )
