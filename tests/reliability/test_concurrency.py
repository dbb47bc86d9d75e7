"""Two flow runs at once on the embedded default stores (SQLite MLflow, SQLite Optuna, one PREFECT_HOME)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT
from torchtransfer import registry
from torchtransfer.tune import study

N_PROCESSES = 4


def _open_stores(urls: tuple[str, str]) -> str:
    """In a fresh process: open the Optuna study and the MLflow experiment as a flow run does."""
    from torchtransfer_tasks.tracking import ensure_experiment, open_client

    optuna_url, mlflow_url = urls
    try:
        study.load_or_create("race", optuna_url, seed=0)
        ensure_experiment(open_client(mlflow_url), "race")
    except Exception as exc:  # reported to the parent, which names it in the failure
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return ""


def test_processes_creating_fresh_sqlite_stores_at_once_all_succeed(tmp_path):
    """Without ``torchtransfer.locking`` every round of this failed ("table studies already exists",
    "duplicate column name: step"): Optuna and MLflow create their schema on first open, unguarded."""
    rounds = [(f"sqlite:///{tmp_path / f'optuna{i}.db'}", f"sqlite:///{tmp_path / f'mlflow{i}.db'}")
              for i in range(3)]
    with multiprocessing.get_context("spawn").Pool(N_PROCESSES) as pool:
        for urls in rounds:
            errors = [e for e in pool.map(_open_stores, [urls] * N_PROCESSES) if e]
            assert not errors, errors
    for optuna_url, mlflow_url in rounds:
        assert [s.study_name for s in optuna.get_all_study_summaries(optuna_url)] == ["race"]
        assert sorted(e.name for e in MlflowClient(mlflow_url).search_experiments()) == ["Default", "race"]


def _bump_under_promotion_lock(args: tuple[str, float]) -> None:
    """At ``start_at``, read-modify-write a registered-model tag, as a champion decision does."""
    from torchtransfer.locking import promotion_lock
    from torchtransfer_tasks.tracking import open_client

    url, start_at = args
    client = open_client(url)
    time.sleep(max(0.0, start_at - time.time()))  # all processes reach the decision together
    with promotion_lock(url):
        n = int(client.get_registered_model("m").tags.get("n", "0"))
        time.sleep(0.3)  # the decision's work (scoring the champion) takes a while
        client.set_registered_model_tag("m", "n", str(n + 1))


def test_champion_decisions_of_concurrent_processes_are_serialised(tmp_path):
    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(url).create_registered_model("m")
    with multiprocessing.get_context("spawn").Pool(N_PROCESSES) as pool:
        pool.map(_bump_under_promotion_lock, [(url, time.time() + 20)] * N_PROCESSES, chunksize=1)
    assert MlflowClient(url).get_registered_model("m").tags["n"] == str(N_PROCESSES)  # no decision lost


@pytest.mark.slow
def test_two_flow_runs_at_once_both_complete_and_nothing_is_lost(cache_dir, tmp_path):
    tracking, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # both processes share it, as two `make run` would
    cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "run", "-c", "conf/default.yaml",
           "-c", "conf/smoke.yaml", "--set", f"cache_dir={cache_dir}", "--set", f"tracking.uri={tracking}",
           "--set", f"tuning.storage={storage}", "--set", "device=cpu"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]

    client = MlflowClient(tracking)
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    parents = client.search_runs([exp_id], "tags.`prefect.flow_run_id` != ''")
    assert len(parents) == 2 and all(r.info.status == "FINISHED" for r in parents)
    for parent in parents:
        assert {"test/target_acc", "baseline/target_acc", "shift/mmd2"} <= set(parent.data.metrics)
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    children = client.search_runs([exp_id], "tags.`optuna.trial_number` != ''")
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == [t.number for t in trials]
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # the median pruner may prune
    assert all(t.state in finished for t in trials) and len(trials) >= 2, [(t.number, t.state.name) for t in trials]
    assert sorted(r.data.tags["optuna.trial_state"] for r in children) == sorted(t.state.name for t in trials)
    versions = client.search_model_versions("name = 'torchtransfer-smoke'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in parents)
    first, second = registry.read_history(client, "torchtransfer-smoke")  # decided one at a time (promotion lock)
    assert first["from"] is None and second["from"] == first["to"], (first, second)
    assert str(client.get_model_version_by_alias("torchtransfer-smoke", "champion").version) == second["to"]
