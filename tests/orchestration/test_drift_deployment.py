"""The issue's must-show against a real ``prefect server``: a served deployment with ``drift.enabled`` over a
target folder runs three times — retrain (no champion), skip (same data, a fraction of the time), retrain (a batch
of rotated real digits added) — with the drift record of all three in MLflow and the events on the server."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from mlflow import MlflowClient
from prefect import get_client
from prefect.deployments import run_deployment

from tests.conftest import CONF, ROOT
from tests.imagefolders import DRIFT_OVERRIDES, add_rotated, drift_folders
from tests.integration.test_drift_flow import drift_events
from torchtransfer.data import datasets
from torchtransfer_cli.servers import stop

pytestmark = pytest.mark.slow
NAME = "smoke-drift"


def _serve(tmp_path, cache_dir, mine, env) -> subprocess.Popen:
    overrides = [f"cache_dir={cache_dir}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
                 f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}", "device=cpu", *DRIFT_OVERRIDES]
    path = tmp_path / "deployments.yaml"
    path.write_text(yaml.safe_dump({"deployments": {NAME: {
        "configs": [str(CONF / "default.yaml"), str(CONF / "smoke.yaml"), str(mine)], "overrides": overrides}}}))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (the child holds it)
    serve = subprocess.Popen(
        [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "serve", "--file", str(path)],
        env=env, cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300  # a loaded machine imports torch, Prefect and MLflow slowly
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(f"transfer_learning/{NAME}")
                return serve
            except Exception:
                assert serve.poll() is None and time.monotonic() < deadline, _log(tmp_path)
                time.sleep(0.5)


def _log(tmp_path) -> str:
    return (tmp_path / "serve.log").read_text()[-3000:]


def test_a_served_drift_deployment_retrains_skips_then_retrains(prefect_server, server_env, tmp_path, archive_cache,
                                                                 cache_dir):
    usps = datasets.usps(archive_cache)
    target, mine = drift_folders(tmp_path, usps)
    serve = _serve(tmp_path, cache_dir, mine, server_env)
    try:
        runs = [run_deployment(f"transfer_learning/{NAME}", timeout=900)]
        runs.append(run_deployment(f"transfer_learning/{NAME}", timeout=900))
        add_rotated(target, usps)
        runs.append(run_deployment(f"transfer_learning/{NAME}", timeout=900))
    finally:
        stop(serve)
    assert all(r.state.is_completed() for r in runs), ([r.state for r in runs], _log(tmp_path))
    seconds = [r.total_run_time.total_seconds() for r in runs]
    print("flow run seconds (Prefect total_run_time):", seconds)
    assert seconds[1] < 0.5 * seconds[0], seconds

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke").experiment_id
    mlflow_runs = [client.search_runs([experiment], f"tags.`prefect.flow_run_id` = '{r.id}'")[0] for r in runs]
    assert [r.data.tags["drift.decision"] for r in mlflow_runs] == ["retrain", "skip", "retrain"]
    assert [r.data.tags["drift.cause"] for r in mlflow_runs][:2] == ["no_champion", "unchanged"]
    assert mlflow_runs[2].data.metrics["drift/p_value"] < 0.05

    monitoring = client.get_experiment_by_name("smoke-monitoring").experiment_id
    [record] = client.search_runs([monitoring])
    assert record.data.tags["torchtransfer.monitor"] == NAME  # one record per deployment
    history = client.get_metric_history(record.info.run_id, "drift/retrain")
    assert [m.value for m in history] == [1.0, 0.0, 1.0]
    ids = {r.info.run_id for r in mlflow_runs}
    events = drift_events("torchtransfer.drift.retrain", ids, 2) + drift_events("torchtransfer.drift.skip", ids, 1)
    assert len(events) == 3 and {e.resource.id for e in events} == {f"torchtransfer.drift.{NAME}"}
