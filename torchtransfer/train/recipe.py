"""The flow's training recipes: config sections (+ the tuned ``HParams``) → one ``TrainPlan``, built here
and nowhere else, then run from a start model on a ``DomainPair``.

Tuning trials, the final fine-tune, the source model and the benchmarks all come through here, so they
train alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from torchtransfer.data.augment import Affine
from torchtransfer.data.splits import DomainPair
from torchtransfer.models import HAS_PRETRAINED_WEIGHTS, build_model
from torchtransfer.train.adaptation import AdaptationSpec
from torchtransfer.train.learner import TransferLearner
from torchtransfer.train.optim import OptimConfig
from torchtransfer.train.plan import TrainPlan
from torchtransfer.train.results import EpochStats, FitResult
from torchtransfer.train.selection import LABELLED_OBJECTIVE, Selector
from torchtransfer.tune.search import HParams

if TYPE_CHECKING:
    from torchtransfer.config import AdaptationConfig, ModelConfig, PretrainConfig, TrainConfig


def fine_tune_plan(train: TrainConfig, adaptation: AdaptationConfig, hp: HParams, seed: int,
                   device: str = "auto") -> TrainPlan:
    """The plan of a trial or the final fine-tune: ``hp`` plus the fixed ``train`` and ``adaptation`` settings."""
    optim = OptimConfig(lr=hp.lr, momentum=train.momentum, nesterov=train.nesterov, weight_decay=hp.weight_decay,
                        optimizer=train.optimizer, lr_mult=train.lr_mult, schedule=train.schedule,
                        warmup_epochs=train.warmup_epochs, label_smoothing=train.label_smoothing,
                        clip_grad_norm=train.clip_grad_norm)
    spec = adaptation_spec(adaptation, hp.method, hp.adaptation_weight)
    return TrainPlan(epochs=hp.epochs, strategy=hp.strategy, optim=optim, adaptation=spec,
                     augment=train.augment and Affine(scale=train.augment_scale),
                     target_augment=target_view(train), batch_size=train.batch_size,
                     unfreeze=train.unfreeze, patience=train.patience, seed=seed, ema_decay=train.ema_decay,
                     device=device)


def target_view(train: TrainConfig) -> Affine | bool | None:
    """``train.target_augment`` as the plan's ``target_augment``: its ``Affine``, None (the source's) or False
    (``train.augment`` off)."""
    view = train.target_augment
    if not train.augment:
        return False
    return None if view is None else Affine(degrees=view.degrees, translate=view.translate, scale=tuple(view.scale))


def adaptation_spec(adaptation: AdaptationConfig, method: str, weight: float) -> AdaptationSpec:
    """The ``adaptation`` config section with the tuned ``method`` and alignment weight λ."""
    return AdaptationSpec(method=method, weight=weight, schedule=adaptation.schedule,
                          entropy_weight=adaptation.entropy_weight,
                          max_importance_weight=adaptation.max_importance_weight,
                          importance_power=adaptation.importance_power, hidden=adaptation.hidden,
                          threshold=adaptation.fixmatch.threshold, fixmatch_weight=adaptation.fixmatch.weight,
                          im_weight=adaptation.shot.im_weight,
                          pseudo_label_weight=adaptation.shot.pseudo_label_weight,
                          source_free=adaptation.source_free)


def pretrain_strategy(model: ModelConfig, pretrain: PretrainConfig) -> str:
    """``pretrain.strategy``; ``auto`` keeps ImageNet features (``feature_extraction``: only the new head learns
    the source classes) when the backbone has pretrained weights and ``model.pretrained`` asks for them, and
    trains the whole network (``fine_tune``) otherwise."""
    if pretrain.strategy != "auto":
        return pretrain.strategy
    return "feature_extraction" if model.pretrained and HAS_PRETRAINED_WEIGHTS[model.backbone] else "fine_tune"


def pretrain_plan(model: ModelConfig, pretrain: PretrainConfig, seed: int, device: str = "auto") -> TrainPlan:
    """The source model's plan: labelled source data, model selection by source validation accuracy."""
    optim = OptimConfig(lr=pretrain.lr, momentum=pretrain.momentum, weight_decay=pretrain.weight_decay)
    return TrainPlan(epochs=pretrain.epochs, strategy=pretrain_strategy(model, pretrain), optim=optim,
                     augment=pretrain.augment and Affine(scale=pretrain.augment_scale),
                     batch_size=pretrain.batch_size, seed=seed, device=device)


@dataclass(frozen=True)
class SourceTraining:
    """How the experiment's source model is built and trained (``plan()``)."""

    model: ModelConfig
    pretrain: PretrainConfig
    seed: int
    device: str = "auto"

    def plan(self) -> TrainPlan:
        return pretrain_plan(self.model, self.pretrain, self.seed, self.device)


@dataclass(frozen=True)
class FineTuning:
    """The fixed part of every fine-tuning run of an experiment; ``plan(hp)`` adds the tuned ``HParams``;
    ``objective`` (``tuning.objective``) selects the best epoch and scores the trial."""

    train: TrainConfig
    adaptation: AdaptationConfig
    seed: int
    device: str = "auto"
    objective: str = LABELLED_OBJECTIVE

    def plan(self, hp: HParams) -> TrainPlan:
        return fine_tune_plan(self.train, self.adaptation, hp, self.seed, self.device)


def fine_tune_with(model: nn.Module, pair: DomainPair, plan: TrainPlan,
                   on_epoch: Callable[[EpochStats], None] | None = None,
                   objective: str = LABELLED_OBJECTIVE) -> tuple[nn.Module, FitResult]:
    """Fine-tune ``model`` by ``plan`` on source train (+ target train for adaptation); every epoch is scored
    by every label-free validator (``EpochStats.metrics``) and the best epoch is the one ``objective`` rates
    highest (``target_val_acc``: the labelled target validation split). ``on_epoch`` may raise (e.g.
    ``optuna.TrialPruned``). The target test split is not read here."""
    oracle = pair.target_val if len(pair.target_val) else None
    selector = Selector.from_domains(objective, pair.target_train, pair.source_val, pair.source_train, oracle,
                                     plan.seed)
    learner = TransferLearner(model, plan.optim, device=plan.device)
    result = learner.fit(pair.source_train, plan=plan, target=pair.target_train, on_epoch=on_epoch,
                         selector=selector)
    return learner.model.cpu(), result


def pretrain_on_source(source: SourceTraining, pair: DomainPair) -> tuple[nn.Module, FitResult]:
    """The source model: the configured backbone trained by ``source.plan()`` on labelled source data, the
    best epoch by source validation accuracy restored."""
    model, plan = source.model, source.plan()
    network = build_model(model.backbone, model.num_classes, plan.seed, pretrained=model.pretrained,
                          weights=model.weights)
    learner = TransferLearner(network, plan.optim, device=plan.device)
    result = learner.fit(pair.source_train, plan=plan, val_data=pair.source_val)
    return learner.model.cpu(), result
