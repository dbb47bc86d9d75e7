"""``pretrain_source`` (content-cached) and ``fine_tune`` with the best hyperparameters."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import torchtransfer
from torchtransfer import keys
from torchtransfer.config import section_hash
from torchtransfer.models import load_weights, save_weights
from torchtransfer.progress import stage
from torchtransfer.train.recipe import FineTuning, SourceTraining, fine_tune_with, pretrain_on_source
from torchtransfer.train.results import EpochStats, FitResult
from torchtransfer.tune.search import HParams
from torchtransfer_tasks.data import DataRef, code_hash
from torchtransfer_tasks.tracking import RunRef, log_epoch, log_metrics, log_params, log_tags


@dataclass(frozen=True)
class ModelRef:
    """Weights on disk for ``backbone``; ``trained_in_run`` is the MLflow run that produced them; ``key`` the
    content key of what produced them (the source model's cache key)."""

    path: str
    sha256: str
    backbone: str
    num_classes: int
    trained_in_run: str
    key: str = ""

    def load(self) -> torch.nn.Module:
        return load_weights(self.backbone, self.num_classes, Path(self.path))


def training_code_hash() -> str:
    """sha256 of the code that trains a model: a change in it changes the source model's key and the study."""
    from torchtransfer.data import augment, batches
    from torchtransfer.models import backbones, zoo
    from torchtransfer.train import adaptation, feature_cache, features, learner, optim, plan, recipe, strategies

    return code_hash(adaptation, augment, backbones, batches, feature_cache, features, learner, optim, plan,
                     recipe, strategies, zoo)


def source_key(source: SourceTraining, fingerprint: str) -> str:
    """Content key of the source model: what it is trained from (the data, the weights file's content) and
    how, the library version and code."""
    weights = source.model.weights
    digest = hashlib.sha256(Path(weights).expanduser().read_bytes()).hexdigest() if weights else None
    return section_hash(source.model, source.plan().__repr__(), fingerprint, torchtransfer.__version__,
                        training_code_hash(), digest)[:32]


def _source_path(source: SourceTraining, fingerprint: str, cache: Path) -> Path:
    return cache / "source_models" / f"{source_key(source, fingerprint)}.pt"


def _source_cache_key(_ctx, params: dict) -> str:
    return "source-model-" + source_key(params["source"], params["data"].fingerprint)


@task(cache_key_fn=_source_cache_key, persist_result=True)
def pretrain_source(source: SourceTraining, data: DataRef, cache: Path, run: RunRef) -> ModelRef:
    """Train the backbone on labelled source data (best epoch by source validation accuracy)."""
    logger = get_run_logger()
    with stage("source model"):
        model, result = pretrain_on_source(source, data.load())
    path = _source_path(source, data.fingerprint, cache)
    sha = save_weights(model, path)
    logger.info("source model (%s): best epoch %d, source val acc %.4f → %s", source.plan().strategy,
                result.best_epoch, result.best_val_acc, path)
    log_metrics(run, {"pretrain/source_val_acc": result.best_val_acc})
    return ModelRef(str(path), sha, source.model.backbone, source.model.num_classes, run.run_id,
                    source_key(source, data.fingerprint))


def source_model(source: SourceTraining, data: DataRef, cache: Path, run: RunRef) -> ModelRef:
    """The cached source model: reused (Prefect state Cached) while its checkpoint file exists."""
    missing = not _source_path(source, data.fingerprint, cache).is_file()
    return pretrain_source.with_options(refresh_cache=missing)(source, data, cache, run)


def fit_hparams(recipe: FineTuning, source: ModelRef, data: DataRef, hp: HParams,
                on_epoch: Callable[[EpochStats], None] | None = None) -> tuple[torch.nn.Module, FitResult]:
    """``torchtransfer.train.recipe.fine_tune_with`` from the source model on the prepared data."""
    return fine_tune_with(source.load(), data.load(), recipe.plan(hp), on_epoch, recipe.objective)


@task(cache_policy=NO_CACHE)
def fine_tune(recipe: FineTuning, data: DataRef, source: ModelRef, hp: HParams, cache: Path,
              run: RunRef) -> ModelRef:
    """Retrain from the source model with the best hyperparameters; per-epoch metrics on the parent run."""
    logger = get_run_logger()
    log_params(run, hp.as_params())
    log_tags(run, {"source_model.sha256": source.sha256, "source_model.trained_in_run": source.trained_in_run,
                   "source_model.cached": str(source.trained_in_run != run.run_id).lower()})
    with stage("final model"):
        model, result = fit_hparams(recipe, source, data, hp, on_epoch=lambda s: log_epoch(run, s))
    path = cache / "runs" / run.run_id / "model.pt"
    sha = save_weights(model, path)
    log_tags(run, {keys.MODEL_SHA256: sha})
    log_metrics(run, {"val/acc_best": result.best_val_acc, "val/objective_best": result.best_score})
    logger.info("fine-tuned (%s, %s): best epoch %d by %s %.4f (target val acc %s)", hp.strategy, hp.method,
                result.best_epoch, recipe.objective, result.best_score,
                "-" if result.best_val_acc is None else f"{result.best_val_acc:.4f}")
    return ModelRef(str(path), sha, source.backbone, source.num_classes, run.run_id)
