"""MLflow I/O of the drift references and the drift record over time.

- A reference (``drift.Reference``) is the artifact ``drift/reference.npz`` of the run that registered the
  version; the version's tags point to it (``drift.reference``: ``runs:/<run id>/drift/reference.npz``) and
  carry its numbers (``drift.fingerprint``, ``drift.score``, ``drift.validator``, ``drift.mean_confidence``).
- The drift record: one run per monitored key (the deployment, else the experiment) in the monitoring
  experiment, tag ``torchtransfer.monitor = <key>``; every check appends its numbers as metrics at step = the
  run's date as ``YYYYMMDD``, so MLflow's chart view of that run draws drift over time (x axis ``Step``, or
  ``Time`` for several checks a day).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion

from torchtransfer.registry.drift import Reference

ARTIFACT = "drift/reference.npz"
REFERENCE_TAG = "drift.reference"
MONITOR_TAG = "torchtransfer.monitor"


def log_reference(client: MlflowClient, run_id: str, ref: Reference) -> dict[str, str]:
    """Log ``ref`` as the run's ``drift/reference.npz``; returns the version tags that point to it."""
    with TemporaryDirectory() as tmp:
        client.log_artifact(run_id, str(ref.save(Path(tmp) / Path(ARTIFACT).name)), str(Path(ARTIFACT).parent))
    return {REFERENCE_TAG: f"runs:/{run_id}/{ARTIFACT}", "drift.fingerprint": ref.data_fingerprint,
            "drift.validator": ref.validator, "drift.score": f"{ref.score:.6f}",
            "drift.mean_confidence": f"{ref.mean_confidence:.6f}", "drift.reference_rows": str(len(ref.features))}


def load_reference(client: MlflowClient, version: ModelVersion) -> Reference | None:
    """The version's reference, or None when it has none (registered before references existed)."""
    uri = version.tags.get(REFERENCE_TAG)
    if not uri:
        return None
    run_id, path = uri.removeprefix("runs:/").split("/", 1)
    with TemporaryDirectory() as tmp:
        return Reference.load(Path(client.download_artifacts(run_id, path, tmp)))


def date_step(when: datetime) -> int:
    """The run's date as a step.

    Example:
        >>> date_step(datetime(2026, 12, 1, 2, 0))
        20261201
    """
    return int(when.strftime("%Y%m%d"))


def monitor_run(client: MlflowClient, experiment_id: str, key: str) -> str:
    """The id of the drift record run of ``key`` in the monitoring experiment, created on first use."""
    found = client.search_runs([experiment_id], f"tags.`{MONITOR_TAG}` = '{key}'", max_results=1,
                               order_by=["attributes.start_time ASC"])
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=f"drift · {key}", tags={MONITOR_TAG: key})
    client.set_terminated(run.info.run_id, "FINISHED")  # a record, not a running job; metrics may still be added
    return run.info.run_id


def record(client: MlflowClient, run_id: str, metrics: dict[str, float], when: datetime) -> int:
    """Append ``metrics`` to the drift record run at step ``date_step(when)``; returns the step."""
    step, ms = date_step(when), int(when.timestamp() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), ms, step) for k, v in metrics.items()])
    return step
