"""Deployments against a real Prefect server: schedules, a served process, a process-pool worker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.deployments import run_deployment

from tests.conftest import CONF, ROOT
from torchtransfer_cli.servers import stop

pytestmark = pytest.mark.slow


def _deployments_file(tmp_path: Path, cache_dir: Path, name: str = "smoke-nightly", **schedule) -> Path:
    overrides = [f"cache_dir={cache_dir}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
                 f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}", "device=cpu"]
    spec = {"configs": [str(CONF / "default.yaml"), str(CONF / "smoke.yaml")], "overrides": overrides,
            "schedule": schedule or {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
            "concurrency_limit": 1, "collision_strategy": "CANCEL_NEW"}
    path = tmp_path / "deployments.yaml"
    path.write_text(yaml.safe_dump({"work_pool": "tt-test-pool", "deployments": {name: spec}}))
    return path


def _cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _assert_parent_run_carries(flow_run, tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id],
                              f"tags.`prefect.flow_run_id` = '{flow_run.id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["prefect.flow_run_name"] == flow_run.name


def test_deploy_creates_a_cron_deployment_with_scheduled_runs_and_a_worker_runs_it(
        prefect_server, server_env, tmp_path, cache_dir):
    path = _deployments_file(tmp_path, cache_dir)
    result = _cli("deploy", "--file", str(path), env=server_env)
    assert result.returncode == 0, result.stderr
    assert "deployed transfer_learning/smoke-nightly" in result.stdout

    served = _cli("serve", "--file", str(path), env=server_env)  # the same name from a served process: refused
    assert served.returncode == 2, served.stderr
    assert "already exists in work pool 'tt-test-pool'" in " ".join(served.stderr.split()), served.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("transfer_learning/smoke-nightly")
        assert deployment.work_pool_name == "tt-test-pool"
        (schedule,) = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Europe/Berlin")
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        assert set(deployment.parameter_openapi_schema["properties"]) == {"cfg"}  # the typed form
        scheduled = []
        for _ in range(60):  # the scheduler service fills in upcoming runs
            scheduled = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state={"type": {"any_": ["SCHEDULED"]}}))
            if scheduled:
                break
            time.sleep(1)
        assert scheduled and all(run.expected_start_time.hour in (0, 1) for run in scheduled)  # 02:00 Berlin

    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", "tt-test-pool",
         "--type", "process"], env=server_env, cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # two runs at once: the deployment's concurrency limit 1 with CANCEL_NEW cancels the second
        first = run_deployment("transfer_learning/smoke-nightly", timeout=0)
        second = run_deployment("transfer_learning/smoke-nightly", timeout=0)
        runs = [_wait_final(first.id), _wait_final(second.id)]
    finally:
        stop(worker)
    # whichever the worker started first runs to completion; the one that found the slot taken is cancelled
    states = sorted(run.state.type.value for run in runs)
    assert states == ["CANCELLED", "COMPLETED"], [run.state for run in runs]
    flow_run = next(run for run in runs if run.state.is_completed())
    _assert_parent_run_carries(flow_run, tmp_path)


def _wait_final(flow_run_id, timeout: float = 600):
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            assert time.monotonic() < deadline, f"flow run {flow_run_id} still {flow_run.state}"
            time.sleep(1)


def test_a_served_deployment_runs_when_triggered(prefect_server, server_env, tmp_path, cache_dir):
    # its own name: serving a name that `deploy` put in a work pool is refused (see the test above)
    path = _deployments_file(tmp_path, cache_dir, "smoke-served", interval=3600, timezone="UTC")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (closed below)
    serve = subprocess.Popen(
        [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "serve", "--file", str(path)],
        env=server_env, cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a loaded machine imports torch, Prefect and MLflow slowly
        with get_client(sync_client=True) as client:
            while True:
                try:
                    client.read_deployment_by_name("transfer_learning/smoke-served")
                    break
                except Exception:
                    assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                    assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
                    time.sleep(0.5)
        flow_run = run_deployment("transfer_learning/smoke-served", timeout=600)
    finally:
        stop(serve)
        log.close()
    assert flow_run.state.is_completed(), (flow_run.state, (tmp_path / "serve.log").read_text()[-3000:])
    _assert_parent_run_carries(flow_run, tmp_path)


def test_prefect_yaml_deploys_the_same_deployments_to_a_process_pool(prefect_server, server_env):
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**server_env, "PWD": str(ROOT)}
    subprocess.run([prefect, "work-pool", "create", "torchtransfer", "--type", "process"], env=env, cwd=ROOT,
                   capture_output=True, text=True, timeout=60)
    result = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    listing = subprocess.run([prefect, "deployment", "ls"], env={**env, "COLUMNS": "200"}, capture_output=True,
                             text=True, timeout=60)
    assert "transfer_learning/nightly-mnist-usps" in listing.stdout
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("transfer_learning/nightly-mnist-usps")
        weekly = client.read_deployment_by_name("transfer_learning/weekly-usps-mnist")
    assert nightly.work_pool_name == weekly.work_pool_name == "torchtransfer"
    assert nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert weekly.schedules[0].schedule.interval.total_seconds() == 604800
    assert nightly.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
    assert nightly.parameters["cfg"]["experiment"] == "mnist-to-usps"


def test_deploy_without_a_server_is_a_clear_error(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)
    result = _cli("deploy", "--file", str(CONF / "deployments.yaml"), env=env)
    assert result.returncode == 2
    assert "no Prefect server configured" in result.stderr
