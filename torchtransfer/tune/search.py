"""The Optuna search space → a frozen ``HParams``. Pure: it asks the trial, and trains nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from torchtransfer.methods import has_alignment

if TYPE_CHECKING:
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
    method: str = "none"  # adaptation method (train.adaptation.METHODS, composed with '+': "dann+fixmatch")

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
    strategies, methods = list(space.strategy), list(space.method)
    lr = _float(trial, "lr", space.lr)
    weight_decay = _float(trial, "weight_decay", space.weight_decay)
    epochs = _int(trial, "epochs", space.epochs)
    strategy = strategies[0] if len(strategies) == 1 else trial.suggest_categorical("strategy", strategies)
    method = methods[0] if len(methods) == 1 else trial.suggest_categorical("method", methods)
    # conditional: the alignment weight λ exists only when an alignment loss takes part (TPE then models it
    # per method); self-training weights are fixed in the adaptation config
    weight = _float(trial, "adaptation_weight", space.adaptation_weight) if has_alignment(method) else 0.0
    return HParams(lr=lr, weight_decay=weight_decay, epochs=epochs, strategy=strategy, adaptation_weight=weight,
                   method=method)


def first_params(space: SearchConfig) -> dict[str, Any]:
    """``space.first`` as Optuna params for ``study.enqueue_trial``: each value clipped into its range, and
    only the dimensions ``suggest_hparams`` asks (not fixed ranges, single choices, or a strategy outside
    ``space.strategy``); the rest is sampled. ``{}`` when ``space.first`` is None.

    Example:
        >>> from torchtransfer.config import FirstTrial, IntRange, SearchConfig
        >>> first = FirstTrial(lr=0.5, weight_decay=5e-4, epochs=15, strategy="fine_tune")
        >>> first_params(SearchConfig(first=first, epochs=IntRange(low=1, high=1)))  # lr clipped to 0.05
        {'lr': 0.05, 'weight_decay': 0.0005, 'strategy': 'fine_tune'}
    """
    first = space.first
    if first is None:
        return {}
    params: dict[str, Any] = {}
    for name, value in (("lr", first.lr), ("weight_decay", first.weight_decay), ("epochs", first.epochs)):
        bounds = getattr(space, name)
        if bounds.low != bounds.high:
            params[name] = min(max(value, bounds.low), bounds.high)
    if len(space.strategy) > 1 and first.strategy in space.strategy:
        params["strategy"] = first.strategy
    return params


def steer(space: SearchConfig, p_value: float | None, alpha: float) -> tuple[SearchConfig, str]:
    """The shift verdict applied to the search space; returns ``(space, reason)``.

    Significant shift (p < alpha): the space is kept, adaptation options included. No significant shift:
    adaptation leaves the space (``method`` → ("none",), ``adaptation_weight`` fixed at 0), so tuning
    searches plain fine-tuning only. ``p_value`` None (no test ran) keeps the space.

    Example:
        >>> from torchtransfer.config import SearchConfig
        >>> steer(SearchConfig(), 0.2, 0.05)[0].adaptation_weight.high
        0.0
    """
    if p_value is None:
        return space, "unchanged: no permutation test ran (shift.n_permutations = 0)"
    if p_value < alpha:
        return space, f"adaptation kept: significant shift (p = {p_value:.4g} < alpha = {alpha:g})"
    no_weight = space.adaptation_weight.model_copy(update={"low": 0.0, "high": 0.0, "log": False})
    update: dict[str, Any] = {"adaptation_weight": no_weight, "method": ("none",)}
    reason = f"adaptation removed: no significant shift (p = {p_value:.4g} >= alpha = {alpha:g})"
    return space.model_copy(update=update), reason
