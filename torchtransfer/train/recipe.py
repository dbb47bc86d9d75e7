"""The flow's fine-tuning recipe as one pure function: a config, a start model, the data and ``HParams``.

Tuning trials, the final fine-tune and the benchmarks all call ``fine_tune_with`` so they train alike.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from torchtransfer.config import ExperimentConfig
from torchtransfer.data.augment import Affine
from torchtransfer.data.splits import DomainPair
from torchtransfer.models import build_model
from torchtransfer.train.adaptation import AdaptationSpec
from torchtransfer.train.learner import EpochStats, FitResult, transfer_learner
from torchtransfer.tune.search import HParams


def fine_tune_with(cfg: ExperimentConfig, model: nn.Module, pair: DomainPair, hp: HParams,
                   on_epoch: Callable[[EpochStats], None] | None = None) -> tuple[nn.Module, FitResult]:
    """Fine-tune ``model`` with ``hp`` plus the fixed ``train`` and ``adaptation`` settings; model selection on
    the labelled target validation split. ``on_epoch`` may raise (e.g. ``optuna.TrialPruned``)."""
    t, a = cfg.train, cfg.adaptation
    learner = transfer_learner(
        model, lr=hp.lr, momentum=t.momentum, nesterov=t.nesterov, weight_decay=hp.weight_decay,
        device=cfg.device, optimizer=t.optimizer, lr_mult=t.lr_mult, schedule=t.schedule,
        warmup_epochs=t.warmup_epochs, label_smoothing=t.label_smoothing, clip_grad_norm=t.clip_grad_norm)
    spec = AdaptationSpec(method=hp.method, weight=hp.adaptation_weight, schedule=a.schedule,
                          entropy_weight=a.entropy_weight, max_importance_weight=a.max_importance_weight,
                          hidden=a.hidden)
    result = learner.fit(pair.source_train, hp.epochs, hp.strategy, val_data=pair.target_val,
                         target=pair.target_train, adaptation=spec, batch_size=t.batch_size,
                         augment=t.augment and Affine(scale=t.augment_scale),
                         seed=cfg.seed, unfreeze=t.unfreeze, patience=t.patience, on_epoch=on_epoch)
    return learner.model.cpu(), result


def pretrain_on_source(cfg: ExperimentConfig, pair: DomainPair) -> tuple[nn.Module, FitResult]:
    """The source model: the configured backbone trained on labelled source data (``pretrain``), the best epoch
    by source validation accuracy restored."""
    p = cfg.pretrain
    model = build_model(cfg.model.backbone, cfg.model.num_classes, cfg.seed, pretrained=cfg.model.pretrained)
    learner = transfer_learner(model, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, device=cfg.device)
    result = learner.fit(pair.source_train, p.epochs, "fine_tune", val_data=pair.source_val,
                         batch_size=p.batch_size, augment=p.augment and Affine(scale=p.augment_scale), seed=cfg.seed)
    return learner.model.cpu(), result
