"""Hyperparameters asked from a real Optuna study, for the search-space tests."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from torchtransfer.config import SearchConfig
from torchtransfer.tune.search import HParams, suggest_hparams


def ask_hparams(space: SearchConfig, sampler: optuna.samplers.BaseSampler, n: int,
                value: Callable[[HParams], float] = lambda hp: 0.5) -> list[tuple[optuna.Trial, HParams]]:
    """``n`` trials of a fresh study with ``sampler``: each (trial, its hparams), told ``value(hp)`` in order."""
    study = optuna.create_study(sampler=sampler, direction="maximize")
    asked = []
    for _ in range(n):
        trial = study.ask()
        hp = suggest_hparams(trial, space)
        asked.append((trial, hp))
        study.tell(trial, value(hp))
    return asked
