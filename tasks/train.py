"""``pretrain_source`` (content-cached) and ``fine_tune`` with the best hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import torchtransfer
from tasks.data import DataRef, cache_dir, code_hash
from tasks.tracking import RunRef, log_epoch, log_metrics, log_params, log_tags
from torchtransfer.adaptation import AdaptationSpec
from torchtransfer.augment import Affine
from torchtransfer.config import ExperimentConfig, section_hash
from torchtransfer.learner import EpochStats, FitResult, transfer_learner
from torchtransfer.models import build_model, load_weights, save_weights
from torchtransfer.search import HParams


@dataclass(frozen=True)
class ModelRef:
    """Weights on disk for ``backbone``; ``trained_in_run`` is the MLflow run that produced them."""

    path: str
    sha256: str
    backbone: str
    num_classes: int
    trained_in_run: str

    def load(self) -> torch.nn.Module:
        return load_weights(self.backbone, self.num_classes, Path(self.path))


def source_key(cfg: ExperimentConfig, fingerprint: str) -> str:
    """Content key of the source model: what it is trained from and how, the library version and code."""
    from torchtransfer import adaptation, augment, backbones, batches, learner, models, optim, strategies

    code = code_hash(adaptation, augment, backbones, batches, learner, models, optim, strategies)
    return section_hash(cfg.model, cfg.pretrain, cfg.seed, fingerprint, torchtransfer.__version__, code)[:32]


def _source_path(cfg: ExperimentConfig, fingerprint: str) -> Path:
    return cache_dir(cfg) / "source_models" / f"{source_key(cfg, fingerprint)}.pt"


def _source_cache_key(_ctx, params: dict) -> str:
    return "source-model-" + source_key(params["cfg"], params["data"].fingerprint)


@task(cache_key_fn=_source_cache_key, persist_result=True)
def pretrain_source(cfg: ExperimentConfig, data: DataRef, run: RunRef) -> ModelRef:
    """Train the backbone on labelled source data (best epoch by source validation accuracy)."""
    logger = get_run_logger()
    pair = data.load()
    model = build_model(cfg.model.backbone, cfg.model.num_classes, cfg.seed, pretrained=cfg.model.pretrained)
    p = cfg.pretrain
    learner = transfer_learner(model, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, device=cfg.device)
    result = learner.fit(pair.source_train, p.epochs, "fine_tune", val_data=pair.source_val,
                         batch_size=p.batch_size, augment=p.augment and Affine(scale=p.augment_scale), seed=cfg.seed)
    path = _source_path(cfg, data.fingerprint)
    sha = save_weights(learner.model.cpu(), path)
    logger.info("source model: best epoch %d, source val acc %.4f → %s", result.best_epoch,
                result.best_val_acc, path)
    log_metrics(run, {"pretrain/source_val_acc": result.best_val_acc})
    return ModelRef(str(path), sha, cfg.model.backbone, cfg.model.num_classes, run.run_id)


def source_model(cfg: ExperimentConfig, data: DataRef, run: RunRef) -> ModelRef:
    """The cached source model: reused (Prefect state Cached) while its checkpoint file exists."""
    missing = not _source_path(cfg, data.fingerprint).is_file()
    return pretrain_source.with_options(refresh_cache=missing)(cfg, data, run)


def fit_hparams(cfg: ExperimentConfig, source: ModelRef, data: DataRef, hp: HParams,
                on_epoch: Callable[[EpochStats], None] | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Fine-tune the source model with ``hp`` (+ the fixed ``train`` and ``adaptation`` settings); model
    selection on the labelled target validation split. ``on_epoch`` may raise (e.g. ``optuna.TrialPruned``)."""
    pair = data.load()
    t, a = cfg.train, cfg.adaptation
    learner = transfer_learner(
        source.load(), lr=hp.lr, momentum=t.momentum, nesterov=t.nesterov, weight_decay=hp.weight_decay,
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


@task(cache_policy=NO_CACHE)
def fine_tune(cfg: ExperimentConfig, data: DataRef, source: ModelRef, hp: HParams, run: RunRef) -> ModelRef:
    """Retrain from the source model with the best hyperparameters; per-epoch metrics on the parent run."""
    logger = get_run_logger()
    log_params(run, hp.as_params())
    log_tags(run, {"source_model.sha256": source.sha256, "source_model.trained_in_run": source.trained_in_run,
                   "source_model.cached": str(source.trained_in_run != run.run_id).lower()})
    model, result = fit_hparams(cfg, source, data, hp, on_epoch=lambda s: log_epoch(run, s))
    path = cache_dir(cfg) / "runs" / run.run_id / "model.pt"
    sha = save_weights(model, path)
    log_tags(run, {"model.sha256": sha})
    log_metrics(run, {"val/acc_best": result.best_val_acc})
    logger.info("fine-tuned (%s, %s): best epoch %d, target val acc %.4f", hp.strategy, hp.method, result.best_epoch,
                result.best_val_acc)
    return ModelRef(str(path), sha, cfg.model.backbone, cfg.model.num_classes, run.run_id)
