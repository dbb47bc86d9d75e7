"""The flow on PostgreSQL-backed Prefect, MLflow and Optuna, 2 Dask trial workers, and a second worker
process that joins the same study by its storage URL (as a second machine would)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
LOCK_ERRORS = ("database is locked", "deadlock detected", "could not obtain lock", "lock timeout",
               "could not serialize access")


def _env(stack, tmp_path: Path, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "PREFECT_API"))}
    env.update(PREFECT_API_URL=stack.prefect_api, PREFECT_HOME=str(tmp_path / home),
               PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp_path / "results"))  # shared cache records
    return env


def _overrides(smoke_cfg, stack) -> list[str]:
    sets = [f"cache_dir={smoke_cfg.cache_dir}", f"tracking.uri={stack.mlflow.url}",
            f"tuning.storage={stack.optuna_url}", "device=cpu", "tuning.n_trials=6", "tuning.n_workers=2",
            "tuning.pruner=none", "search.epochs.low=3", "search.epochs.high=3"]
    return [arg for s in sets for arg in ("--set", s)]


def _study(url: str) -> optuna.Study | None:
    summaries = optuna.get_all_study_summaries(storage=url)
    return optuna.load_study(study_name=summaries[0].study_name, storage=url) if summaries else None


def _wait_for_study(url: str, flow: subprocess.Popen, timeout: float = 400) -> None:
    """Until the flow has opened its study (its data and source model are in the shared caches by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert flow.poll() is None, "the flow ended before it opened its study"
        if optuna.get_all_study_summaries(storage=url):
            return
        time.sleep(0.5)
    raise TimeoutError("the flow did not open its study")


def _prefect_flow_runs(api: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        return {flows[r.flow_id]: r.state.type.value for r in client.read_flow_runs()}


def _rows(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]


def test_flow_with_two_dask_workers_and_a_second_machine_worker_on_postgres(pg_stack, smoke_cfg, tmp_path):
    stack, logs = pg_stack, pg_stack.logs
    config = ["--config", "conf/default.yaml", "conf/smoke.yaml"]
    with open(logs / "flow.log", "wb") as flow_log, open(logs / "worker.log", "wb") as worker_log:
        flow = subprocess.Popen([sys.executable, "-m", "torchtransfer_flows.transfer", *config,
                                 *_overrides(smoke_cfg, stack)],
                                cwd=ROOT, env=_env(stack, tmp_path, "home-flow"), stdout=flow_log,
                                stderr=subprocess.STDOUT)
        try:
            _wait_for_study(stack.optuna_url, flow)
            worker = subprocess.run(
                [sys.executable, "-m", "torchtransfer_cli.app", "tune-worker", "-c", "conf/default.yaml", "-c",
                 "conf/smoke.yaml", *_overrides(smoke_cfg, stack), "--trials", "2", "--worker", "second-machine"],
                cwd=ROOT, env=_env(stack, tmp_path, "home-worker"), stdout=worker_log, stderr=subprocess.STDOUT,
                timeout=600)
            flow.wait(timeout=600)
        finally:
            flow.kill()
    output = {p.name: p.read_text(errors="replace") for p in logs.glob("*.log")}
    assert flow.returncode == 0, output["flow.log"][-3000:]
    assert worker.returncode == 0, output["worker.log"][-3000:]
    for name, text in output.items():  # no lock errors anywhere: flow, worker, Prefect and MLflow servers
        assert not [e for e in LOCK_ERRORS if e in text.lower()], f"lock error in {name}"

    study = _study(stack.optuna_url)
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8  # 6 of the flow + 2 of the worker
    by_worker: dict[str, list[int]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert len(by_worker.pop("second-machine")) == 2
    assert len(by_worker) == 2 and sum(map(len, by_worker.values())) == 6  # the flow's two Dask workers
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)  # workers' samplers are seeded apart: no duplicated trial

    client = MlflowClient(stack.mlflow.url)
    exp = client.get_experiment_by_name("smoke").experiment_id
    children = client.search_runs([exp], f"tags.`optuna.study_name` = '{study.study_name}'")
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == [t.number for t in trials]
    for run in children:  # nothing lost: every child run finished with its metrics
        assert run.info.status == "FINISHED" and run.data.tags["optuna.trial_state"] == "COMPLETE"
        assert "val/acc_best" in run.data.metrics and len(client.get_metric_history(run.info.run_id, "val/acc")) == 3
        assert run.data.tags["torchtransfer.worker"] == study.trials[
            int(run.data.tags["optuna.trial_number"])].user_attrs["worker"]
    flow_run = client.search_runs([exp], "tags.`mlflow.runName` != '' and attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time ASC"])[0]
    versions = client.search_model_versions("name = 'torchtransfer-smoke'")
    assert [v.run_id for v in versions] == [flow_run.info.run_id]
    worker_parent = {r.data.tags["mlflow.parentRunId"] for r in children
                     if r.data.tags["torchtransfer.worker"] == "second-machine"}
    assert client.get_run(worker_parent.pop()).data.tags["torchtransfer.role"] == "tune-worker"

    runs = _prefect_flow_runs(stack.prefect_api)
    assert runs["transfer_learning"] == "COMPLETED" and runs["tune_worker"] == "COMPLETED"
    assert _rows(stack.prefect_db, "flow_run") >= 3 and _rows(stack.mlflow_db, "runs") >= 2 + 8


def _dask_cluster(env: dict[str, str], logs: Path) -> tuple[str, list[subprocess.Popen]]:
    """`dask scheduler` and `dask worker --nworkers 2` as separate processes (as on other machines)."""
    from torchtransfer_cli.servers import _bin, free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    commands = {"dask-scheduler": ["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1]],
                "dask-workers": ["worker", address, "--nworkers", "2", "--nthreads", "1"]}
    processes = []
    for name, args in commands.items():
        with open(logs / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            processes.append(subprocess.Popen([_bin("dask"), *args, "--no-dashboard"], cwd=ROOT, env=env,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return address, processes[::-1]  # stopped workers first


def test_trials_run_on_an_external_dask_cluster_at_tuning_dask_address(pg_stack, smoke_cfg, tmp_path):
    from distributed import Client

    from torchtransfer_cli.servers import stop

    stack, logs = pg_stack, pg_stack.logs
    env = _env(stack, tmp_path, "home-dask")
    address, processes = _dask_cluster(env, logs)
    try:
        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
            dask_pids = set(client.run(os.getpid).values())
        sets = [*_overrides(smoke_cfg, stack), "--set", f"tuning.dask_address={address}", "--set",
                "tuning.n_trials=2"]
        flow = subprocess.run([sys.executable, "-m", "torchtransfer_flows.transfer", "--config", "conf/default.yaml",
                               "conf/smoke.yaml", *sets], cwd=ROOT, env=_env(stack, tmp_path, "home-flow"),
                              capture_output=True, text=True, timeout=600)
    finally:
        for process in processes:
            stop(process)
    assert flow.returncode == 0, (flow.stdout + flow.stderr)[-3000:]
    trials = _study(stack.optuna_url).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    ran_on = {int(t.user_attrs["worker"].rsplit("-", 1)[1]) for t in trials}
    assert ran_on <= dask_pids and len(ran_on) == 2  # in the external Dask worker processes, one trial each
