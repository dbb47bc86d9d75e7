"""MLflow I/O for the tasks, always through ``MlflowClient`` and an explicit run id (no ambient active run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

import torchtransfer
from torchtransfer import keys, provenance
from torchtransfer.config import RunRecord
from torchtransfer.locking import schema_lock, sqlite_path
from torchtransfer.train.results import EpochStats
from torchtransfer.uris import tracking_uri

MAX_BATCH = 100
MAX_RUN_NAME = 250  # MLflow's runs.name column


@dataclass(frozen=True)
class RunRef:
    """Where a run lives: the tracking URI, the experiment and the run id."""

    tracking_uri: str
    experiment_id: str
    run_id: str

    @property
    def client(self) -> MlflowClient:
        return open_client(self.tracking_uri)


def open_client(uri: str) -> MlflowClient:
    """A client of ``uri``. Constructing one creates a fresh SQLite store's tables and runs its migrations,
    so that happens under ``torchtransfer.locking.schema_lock`` (two processes racing on it corrupt it)."""
    with schema_lock(uri):
        return MlflowClient(uri)


def _chunks(items: list, size: int = MAX_BATCH):
    for i in range(0, len(items), size):
        yield items[i: i + size]


def log_params(run: RunRef, params: dict[str, Any]) -> None:
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for chunk in _chunks(items):
        run.client.log_batch(run.run_id, params=chunk)


def log_metrics(run: RunRef, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
    for chunk in _chunks(items):
        run.client.log_batch(run.run_id, metrics=chunk)


def log_tags(run: RunRef, tags: dict[str, Any]) -> None:
    run.client.log_batch(run.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_epoch(run: RunRef, stats: EpochStats) -> None:
    """``train/loss``, ``val/acc`` (the oracle, where target validation labels exist), ``val/objective`` and
    every ``validation/<name>`` at step = epoch."""
    log_metrics(run, {"train/loss": stats.train_loss, "val/acc": stats.val_acc, "val/objective": stats.objective,
                      **stats.metrics}, step=stats.epoch)


def start_child(parent: RunRef, name: str, params: dict[str, Any]) -> RunRef:
    """A nested run under ``parent`` (tag ``mlflow.parentRunId``), with its params logged."""
    run = parent.client.create_run(parent.experiment_id, run_name=name,
                                   tags={"mlflow.parentRunId": parent.run_id})
    child = RunRef(parent.tracking_uri, parent.experiment_id, run.info.run_id)
    log_params(child, params)
    return child


def end(run: RunRef, status: str = "FINISHED") -> None:
    run.client.set_terminated(run.run_id, status)


def artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store live beside its database file (``mlruns/``), not in whatever folder the
    process happens to run in; servers and other stores keep their own default (None)."""
    path = sqlite_path(uri)
    return None if path is None else (path.resolve().parent / "mlruns").as_uri()


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created when missing and marked a model-training experiment
    (``keys.EXPERIMENT_KIND``; one created before without a kind gets it, a kind set in the UI is kept). A fresh
    SQLite store is created (tables, migrations, the experiment) by one process at a time: see
    ``torchtransfer.locking``."""
    with schema_lock(client.tracking_uri):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri),
                                            tags={keys.EXPERIMENT_KIND_TAG: keys.EXPERIMENT_KIND})
        if keys.EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, keys.EXPERIMENT_KIND_TAG, keys.EXPERIMENT_KIND)
        return experiment.experiment_id


def run_name(*parts: str) -> str:
    """A run name from its non-empty parts, ``·``-joined and cut to MLflow's limit, e.g.
    ``run_name("trial 3", "smoke · mnist→usps · dan", "witty-fox")`` → ``trial 3 · smoke · mnist→usps · dan ·
    witty-fox``."""
    name = " · ".join(p for p in parts if p)
    return name if len(name) <= MAX_RUN_NAME else name[: MAX_RUN_NAME - 1] + "…"


def close_orphan_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Parent runs still RUNNING in MLflow whose Prefect flow run has ended (it failed while MLflow was
    unreachable, say) are marked FAILED, so the UI does not show them as running forever."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    closed = []
    query = "attributes.status = 'RUNNING' and tags.`prefect.flow_run_id` != ''"
    with get_client(sync_client=True) as prefect:
        for orphan in client.search_runs([experiment_id], query):
            try:
                state = prefect.read_flow_run(orphan.data.tags["prefect.flow_run_id"]).state
            except (ObjectNotFound, ValueError):
                continue  # a flow run of another Prefect server: not ours to judge
            if state is not None and state.is_final():
                client.set_tag(orphan.info.run_id, "torchtransfer.closed_reason",
                               f"Prefect flow run ended {state.name} while this run was left RUNNING")
                client.set_terminated(orphan.info.run_id, "FAILED")
                closed.append(orphan.info.run_id)
    return closed


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def start_run(record: RunRecord) -> RunRef:
    """Create the flow's parent run: tags, the flattened config as params, the resolved config artifact."""
    uri = tracking_uri(record.tracking_uri)
    client = open_client(uri)
    code_tags, diff = provenance.code_record()
    exp_id = ensure_experiment(client, record.experiment)
    tags = {
        "prefect.flow_run_id": flow_run.get_id() or "",
        "prefect.flow_run_name": flow_run.get_name() or "",
        keys.CONFIG_SHA256: record.sha256,
        "torchtransfer.version": torchtransfer.__version__,
        **code_tags,
        **provenance.environment_tags(record.device),
    }
    close_orphan_runs(client, exp_id)
    run = client.create_run(exp_id, run_name=run_name(record.label, flow_run.get_name() or ""), tags=tags)
    ref = RunRef(uri, exp_id, run.info.run_id)
    log_params(ref, record.params)
    client.log_text(ref.run_id, yaml.safe_dump(record.resolved, sort_keys=False), "config/resolved.yaml")
    client.log_text(ref.run_id, provenance.requirements(), "environment/requirements.txt")
    log_params(ref, provenance.seed_params(record.seed, record.n_workers))
    if diff:
        client.log_text(ref.run_id, diff, "code/git.diff")
    return ref


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def end_run(run: RunRef, status: str) -> None:
    end(run, status)
