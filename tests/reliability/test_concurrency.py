"""Two flow runs at once on the embedded default stores (SQLite MLflow, SQLite Optuna, one PREFECT_HOME)."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
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
HOLD_S = 0.5  # how long one champion decision holds the promotion lock


@pytest.fixture(autouse=True)
def _one_thread_per_process(monkeypatch):
    """Four processes on a small machine: one compute thread each (the children inherit the environment)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")


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


@pytest.mark.slow  # four spawned processes
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


def _decide_under_promotion_lock(url: str, barrier, results) -> None:
    """Read-decide-write a registered-model tag under the promotion lock, as a champion decision does, starting
    together with the other processes (at ``barrier``); report when it passed the barrier, got the lock, left."""
    import torch

    from torchtransfer.locking import promotion_lock
    from torchtransfer_tasks.tracking import open_client

    torch.set_num_threads(1)
    client = open_client(url)
    client.get_registered_model("m")  # connect and check the schema before the race, not in it
    barrier.wait(timeout=300)
    passed = entered = left = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes of this machine
    error = ""
    try:
        with promotion_lock(url):
            entered = time.monotonic()
            n = int(client.get_registered_model("m").tags.get("n", "0"))
            time.sleep(HOLD_S)  # the decision's work (scoring the champion) takes a while
            client.set_registered_model_tag("m", "n", str(n + 1))
            left = time.monotonic()
    except Exception as exc:  # reported to the parent, which names it in the failure
        left, error = time.monotonic(), f"{type(exc).__name__}: {str(exc)[:200]}"
    results.put((passed, entered, left, error))


def _collect(results, procs, timeout: float = 300) -> list[tuple]:
    """One report per process; stops waiting early when every process has exited."""
    reports, deadline = [], time.monotonic() + timeout
    while len(reports) < len(procs) and time.monotonic() < deadline:
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            if not any(proc.is_alive() for proc in procs):
                break
    return reports


@pytest.mark.slow  # four spawned processes
def test_champion_decisions_of_concurrent_processes_are_serialised(tmp_path):
    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(url).create_registered_model("m")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(N_PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_decide_under_promotion_lock, args=(url, barrier, results))
             for _ in range(N_PROCESSES)]
    for proc in procs:
        proc.start()
    try:
        windows = sorted(_collect(results, procs))  # (passed barrier, got lock, left it, error), by arrival
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert len(windows) == N_PROCESSES, f"exit codes {[proc.exitcode for proc in procs]}, reports {windows}"
    passed, entered, left, errors = zip(*windows, strict=True)
    # they contended: every process was at the lock before the first one was done with it
    assert max(passed) < min(left), f"the processes did not meet (a loaded machine?): {windows}"
    by_entry = sorted(zip(entered, left, strict=True))
    overlaps = [(a, b) for a, b in itertools.pairwise(by_entry) if b[0] < a[1]]
    assert not overlaps, f"two decisions held the lock at once: {overlaps}, errors {errors}"
    assert not any(errors), errors
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
