"""Tuning survives kill -9: the re-run resumes the study with no duplicate trial runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import ROOT
from torchtransfer.tune import study as studies
from torchtransfer_flows.transfer import transfer_learning

SLOW_TRIALS = ["tuning.n_trials=4", "tuning.pruner=none", "search.epochs.low=4", "search.epochs.high=4"]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"gave up waiting for {what}")


def _trials(url: str):
    try:
        summaries = optuna.get_all_study_summaries(storage=url)
        return [] if not summaries else optuna.load_study(study_name=summaries[0].study_name,
                                                          storage=url).get_trials(deepcopy=False)
    except Exception:  # storage not created yet
        return []


@pytest.mark.slow
def test_kill_9_during_tuning_then_the_rerun_resumes_without_duplicates(smoke_cfg, tmp_path):
    cfg = smoke_cfg.model_copy(update={
        "tuning": smoke_cfg.tuning.model_copy(update={"n_trials": 4, "pruner": "none"}),
        "search": smoke_cfg.search.model_copy(update={"epochs": smoke_cfg.search.epochs.model_copy(
            update={"low": 4, "high": 4})})})
    url = cfg.tuning.storage
    overrides = [f"cache_dir={cfg.cache_dir}", f"tracking.uri={cfg.tracking.uri}", f"tuning.storage={url}",
                 "device=cpu", *SLOW_TRIALS]
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    cmd = [sys.executable, "-m", "torchtransfer_flows.transfer", "--config", "conf/default.yaml", "conf/smoke.yaml"]
    for o in overrides:
        cmd += ["--set", o]
    victim = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: any(t.state == TrialState.COMPLETE for t in _trials(url))
                  and any(t.state == TrialState.RUNNING for t in _trials(url)), 240, "a trial mid-study")
    finally:
        os.killpg(victim.pid, signal.SIGKILL)  # the flow process and its temporary Prefect server
        victim.wait()
    killed = [t.number for t in _trials(url) if t.state == TrialState.RUNNING]
    done_before = [t.number for t in _trials(url) if t.state == TrialState.COMPLETE]
    assert len(killed) == 1 and done_before
    time.sleep(studies.GRACE_S + 1)  # the dead process's heartbeat goes stale

    summary = transfer_learning(cfg)

    study = optuna.load_study(study_name=summary.study_name, storage=url)
    assert summary.study_name == MlflowClient(cfg.tracking.uri).get_run(summary.run_id).data.params[
        "tuning.study_name"]  # the re-run continued the killed run's study (its trial is FAIL below)
    states = {t.number: t.state for t in study.trials}
    assert states[killed[0]] == TrialState.FAIL
    assert sum(s == TrialState.COMPLETE for s in states.values()) == 4
    client = MlflowClient(cfg.tracking.uri)
    children = client.search_runs([client.get_experiment_by_name("smoke").experiment_id],
                                  f"tags.`optuna.study_name` = '{summary.study_name}'")
    by_trial: dict[str, list] = {}
    for run in children:
        by_trial.setdefault(run.data.tags["optuna.trial_number"], []).append(run)
    assert all(len(runs) == 1 for runs in by_trial.values())  # no duplicate trial runs
    assert {int(n) for n in by_trial} == set(states)
    orphan = by_trial[str(killed[0])][0]
    assert orphan.info.status == "FAILED" and orphan.data.tags["optuna.trial_state"] == "FAIL"
    for number in done_before:  # completed before the kill: kept, not re-run
        assert by_trial[str(number)][0].info.status == "FINISHED"


@pytest.mark.slow
def test_two_dask_workers_share_one_journal_study(smoke_cfg, tmp_path):
    cfg = smoke_cfg.model_copy(update={"tuning": smoke_cfg.tuning.model_copy(update={
        "n_trials": 4, "n_workers": 2, "pruner": "none", "storage": f"journal://{tmp_path / 'study.log'}"})})
    summary = transfer_learning(cfg)
    study = optuna.load_study(study_name=summary.study_name, storage=studies.open_storage(cfg.tuning.storage))
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 4
    client = MlflowClient(cfg.tracking.uri)
    children = client.search_runs([client.get_experiment_by_name("smoke").experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{summary.run_id}'")
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == [0, 1, 2, 3]


def test_parallel_workers_on_sqlite_are_refused_before_anything_runs(smoke_cfg):
    with pytest.raises(ValueError, match="journal:///"):
        smoke_cfg.tuning.model_validate({**smoke_cfg.tuning.model_dump(), "n_workers": 2})


def test_study_name_changes_with_adaptation_settings_and_trial_code(smoke_cfg, monkeypatch):
    """A re-run continues (or, complete, reuses) a study only when every setting a trial ran under is the same:
    ``adaptation.*`` and the code that trains a trial were missing from the name's hash."""
    from torchtransfer.train.recipe import FineTuning
    from torchtransfer_tasks import train as train_tasks
    from torchtransfer_tasks import tune as tune_tasks
    from torchtransfer_tasks.train import ModelRef

    source = ModelRef("unused.pt", "sha", "lenet", 10, "run", key="source-key")

    def spec(cfg):
        recipe = FineTuning(cfg.train, cfg.adaptation, cfg.seed, cfg.device)
        return tune_tasks.study_spec(cfg.experiment, cfg.tuning, cfg.search, recipe, source, "fingerprint")

    base = spec(smoke_cfg)
    assert spec(smoke_cfg) == base  # deterministic
    entropy = smoke_cfg.adaptation.model_copy(update={"entropy_weight": smoke_cfg.adaptation.entropy_weight + 0.1})
    assert spec(smoke_cfg.model_copy(update={"adaptation": entropy})).name != base.name
    monkeypatch.setattr(tune_tasks, "training_code_hash", lambda: "other code")
    assert spec(smoke_cfg).name != base.name
    monkeypatch.undo()
    assert spec(smoke_cfg).name == base.name and base.storage == smoke_cfg.tuning.storage
    assert train_tasks.training_code_hash() == train_tasks.training_code_hash()


def _tuned(cfg, epochs: int, **tuning):
    return cfg.model_copy(update={
        "tuning": cfg.tuning.model_copy(update=tuning),
        "search": cfg.search.model_copy(update={
            # most lr values learn, each at its own pace: val/acc spreads out (no ties at the source model's)
            "lr": cfg.search.lr.model_copy(update={"low": 0.005, "high": 0.1, "log": False}),
            "epochs": cfg.search.epochs.model_copy(update={"low": epochs, "high": epochs})})})


def _trial_runs(client: MlflowClient, run_id: str) -> dict[int, object]:
    runs = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    return {int(r.data.tags["optuna.trial_number"]): r for r in runs}


def test_the_median_pruner_prunes_bad_trials_and_their_runs_are_killed(smoke_cfg):
    cfg = _tuned(smoke_cfg, epochs=3, n_trials=7, pruner="median")
    summary = transfer_learning(cfg)

    study = optuna.load_study(study_name=summary.study_name, storage=cfg.tuning.storage)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state, t.intermediate_values) for t in study.trials]
    assert len(study.trials) == 7 and all(t.state in (TrialState.PRUNED, TrialState.COMPLETE) for t in study.trials)
    client = MlflowClient(cfg.tracking.uri)
    runs = _trial_runs(client, summary.run_id)
    assert set(runs) == {t.number for t in study.trials}
    for trial in study.trials:
        run = runs[trial.number]
        if trial.state == TrialState.PRUNED:
            assert run.info.status == "KILLED" and run.data.tags["optuna.trial_state"] == "PRUNED"
            assert run.data.tags["optuna.pruned_reason"].startswith("pruned at epoch")
            assert len(client.get_metric_history(run.info.run_id, "val/acc")) < 3  # stopped before the last epoch
        else:
            assert run.info.status == "FINISHED" and run.data.tags["optuna.trial_state"] == "COMPLETE"
    parent = client.get_run(summary.run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["tuning/n_pruned"] == len(pruned)


def test_tuning_timeout_stops_the_study_early_and_the_run_still_finishes(smoke_cfg):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    cfg = _tuned(smoke_cfg, epochs=2, n_trials=30, pruner="none", timeout=1.0)
    summary = transfer_learning(cfg)

    study = optuna.load_study(study_name=summary.study_name, storage=cfg.tuning.storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert 1 <= len(complete) == len(study.trials) < 30
    client = MlflowClient(cfg.tracking.uri)
    parent = client.get_run(summary.run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["tuning/n_complete"] == len(complete)
    assert len(_trial_runs(client, summary.run_id)) == len(complete)

    # the flow's summary, as the Prefect API holds it: a markdown table of the run's rows
    with get_client(sync_client=True) as prefect:
        key = ArtifactFilter(key=ArtifactFilterKey(any_=["smoke-summary"]))
        artifacts = prefect.read_artifacts(artifact_filter=key)
    (artifact,) = [a for a in artifacts if str(a.flow_run_id) == parent.data.tags["prefect.flow_run_id"]]
    assert artifact.type == "markdown"
    for label, value in summary.rows().items():
        assert f"| {label} | {value} |" in artifact.data
    assert f"| tuned target acc | {summary.target_acc:.4f} |" in artifact.data
    assert f"MLflow run: [{summary.run_id}](http://127.0.0.1:5000/#/experiments/" in artifact.data
