r"""Optimisers (SGD with momentum/Nesterov, AdamW) and per-step learning-rate schedules with warm-up.

Schedules multiply each group's base lr by :math:`m(t)` at optimisation step :math:`t` of :math:`T`, with
:math:`W` warm-up steps:

- ``constant``: :math:`m = \min(1, (t+1)/W)`
- ``cosine``: linear warm-up, then :math:`m = \tfrac12(1 + \cos(\pi (t - W)/(T - W)))`
- ``onecycle``: ``torch.optim.lr_scheduler.OneCycleLR`` (cosine up over W steps, then down to lr/1e4; it
  cycles SGD momentum inversely); W defaults to 30 % of T when no warm-up is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from torchtransfer.names import OPTIMIZERS, SCHEDULES


@dataclass(frozen=True)
class OptimConfig:
    """Everything about how parameters move; ``lr`` is the head's, the backbone's is ``lr · lr_mult``."""

    lr: float = 0.001
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr_mult: float = 1.0
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.lr_mult < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError("lr_mult, weight_decay and warmup_epochs must be ≥ 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer 'sgd' with momentum > 0")


def make_optimizer(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """:math:`m(t)` of ``constant`` and ``cosine`` (see the module docstring).

    Example:
        >>> [round(lr_factor(t, 10, 2, "cosine"), 3) for t in (0, 1, 2, 6, 9)]
        [0.5, 1.0, 1.0, 0.5, 0.038]
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / span))


def make_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                   epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler to ``step()`` after every optimiser step."""
    total = max(steps_per_epoch * epochs, 1)
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total)
    if cfg.schedule == "onecycle":
        pct = warmup / total if warmup else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total, pct_start=min(max(pct, 1e-3), 0.99),
            cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: lr_factor(t, total, warmup, cfg.schedule))
