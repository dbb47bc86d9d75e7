"""``register_model``: log the fine-tuned model, register a version (alias ``challenger``), gate ``champion``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlflow.exceptions import MlflowException
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import torchtransfer
from tasks.data import DataRef
from tasks.tracking import RunRef, log_metrics, log_tags
from tasks.train import ModelRef
from torchtransfer import promotion
from torchtransfer.config import RegistryConfig

CHALLENGER, CHAMPION = "challenger", "champion"
TARGET_ACC_TAG = "test.target_acc"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    aliases: tuple[str, ...]
    decision: promotion.Decision


def _pip_requirements() -> list[str]:
    return [f"{dist}=={metadata.version(dist)}" for dist in ("torch", "numpy", "scikit-learn")]


def _log_model(model: ModelRef, data: DataRef, run: RunRef) -> str:
    """Log the model (pytorch flavour, pickled nn.Module, library code bundled) on the parent run."""
    import mlflow
    import mlflow.pytorch  # imported here: it calls logging.basicConfig, which upsets Prefect's logs

    example = data.load().target_test.x[:2].numpy()  # (2, 1, 28, 28) float32 in [0, 1]
    mlflow.set_tracking_uri(run.tracking_uri)
    with mlflow.start_run(run_id=run.run_id):
        info = mlflow.pytorch.log_model(
            model.load().eval(), name="model", input_example=example, serialization_format="pickle",
            pip_requirements=_pip_requirements(), code_paths=[str(Path(torchtransfer.__file__).parent)],
        )
    return info.model_uri


def _champion_acc(run: RunRef, name: str) -> float | None:
    try:
        champion = run.client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = champion.tags.get(TARGET_ACC_TAG)
    return float(value) if value is not None else None


@task(cache_policy=NO_CACHE)
def register_model(model: ModelRef, metrics: dict[str, float], data: DataRef, cfg: RegistryConfig,
                   run: RunRef) -> Registered:
    """Register a version tagged with its run, data and test metrics; move ``champion`` only if the gate
    (``torchtransfer.promotion.passes``) says so; record the decision on the parent run."""
    import mlflow

    logger = get_run_logger()
    uri = _log_model(model, data, run)
    client = run.client
    tags = {"run_id": run.run_id, "data.fingerprint": data.fingerprint, "model.sha256": model.sha256,
            **{k.replace("/", "."): f"{v:.6f}" for k, v in metrics.items()}}
    version = mlflow.register_model(uri, cfg.model_name, tags=tags).version
    client.set_registered_model_alias(cfg.model_name, CHALLENGER, version)
    decision = promotion.passes(metrics["test/target_acc"], _champion_acc(run, cfg.model_name),
                                cfg.min_improvement)
    if decision.promote:
        client.set_registered_model_alias(cfg.model_name, CHAMPION, version)
    aliases = tuple(client.get_model_version(cfg.model_name, version).aliases)
    log_tags(run, {"registry.model_name": cfg.model_name, "registry.version": version,
                   "promotion.promoted": str(decision.promote).lower(), "promotion.reason": decision.reason})
    log_metrics(run, {"registry/version": float(version)})
    logger.info("registered %s v%s %s; %s", cfg.model_name, version, list(aliases), decision.reason)
    return Registered(cfg.model_name, str(version), aliases, decision)
