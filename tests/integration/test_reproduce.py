"""Determinism and `torchtransfer reproduce`: same config, same machine → same metrics and weights."""

from __future__ import annotations

import os
from types import SimpleNamespace

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from typer.testing import CliRunner

from torchtransfer import keys
from torchtransfer.config import SearchConfig
from torchtransfer_cli import reproduction
from torchtransfer_cli.app import app
from torchtransfer_cli.reproduction import Report, compare, pinned_search, provenance_warnings, reproduce
from torchtransfer_cli.servers import start_mlflow, stop
from torchtransfer_flows.transfer import transfer_learning

RECORDED = ("git.commit", "git.dirty", "env.torch", "env.cuda", "env.device", "config.sha256", "data.fingerprint",
            "model.sha256")


def _in(cfg, tmp_path, name):
    return cfg.model_copy(update={
        "tracking": cfg.tracking.model_copy(update={"uri": f"sqlite:///{tmp_path / name / 'mlflow.db'}"}),
        "tuning": cfg.tuning.model_copy(update={"storage": f"sqlite:///{tmp_path / name / 'optuna.db'}"})})


@pytest.mark.slow
def test_the_smoke_flow_twice_on_fresh_stores_gives_identical_metrics_and_weights(smoke_cfg, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a_cfg, b_cfg = _in(smoke_cfg, tmp_path, "a"), _in(smoke_cfg, tmp_path, "b")
    a, b = transfer_learning(a_cfg), transfer_learning(b_cfg)
    run_a = MlflowClient(a_cfg.tracking.uri).get_run(a.run_id)
    run_b = MlflowClient(b_cfg.tracking.uri).get_run(b.run_id)
    assert set(RECORDED) <= set(run_a.data.tags)
    assert run_a.data.tags["model.sha256"] == run_b.data.tags["model.sha256"]
    # b reuses a's cached source model, so only a logged the pretraining metric; everything else is equal
    assert {k: v for k, v in run_a.data.metrics.items() if not k.startswith("pretrain/")} == run_b.data.metrics
    hp = {k: v for k, v in run_a.data.params.items() if k.startswith(("hp.", "tuning.best.", "seed."))}
    assert hp and hp == {k: v for k, v in run_b.data.params.items() if k in hp}
    assert {"tuning.study_name", "tuning.sampler_seed", "tuning.storage"} <= set(run_a.data.params)


@pytest.mark.slow
def test_reproduce_final_matches_the_recorded_run(smoke_cfg):
    original = transfer_learning(smoke_cfg)
    report = reproduce(original.run_id, smoke_cfg.tracking.uri, "final")
    assert report.matches, report.rows
    names = {row.name for row in report.rows}
    assert {"test/target_acc", "baseline/target_acc", "model.sha256"} <= names
    assert not [w for w in report.warnings if "data" in w]

    result = CliRunner().invoke(app, ["reproduce", original.run_id, "--tracking-uri", smoke_cfg.tracking.uri])
    assert result.exit_code == 0, result.output
    assert "test/target_acc" in result.output and "reproduced" in result.output


def test_pinned_search_asks_nothing():
    space = SearchConfig()
    pinned = pinned_search(space, {"hp.lr": "0.01", "hp.epochs": "3", "hp.strategy": "fine_tune"})
    assert (pinned.lr.low, pinned.lr.high) == (0.01, 0.01)
    assert (pinned.epochs.low, pinned.epochs.high) == (3, 3)
    assert pinned.strategy == ("fine_tune",)
    assert pinned.weight_decay == space.weight_decay  # not recorded: left as it was


def _store(uri: str, storage: str) -> dict:
    """Everything a reproduction must leave alone: experiments, runs (status, metrics, tags), registered model
    versions and aliases in the MLflow store ``uri``, and the trials of the Optuna storage."""
    client = MlflowClient(uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL, max_results=1000)
    models = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        models[model.name] = (sorted(str(v.version) for v in versions),
                              dict(client.get_registered_model(model.name).aliases))
    trials = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage=storage)}
    return {"experiments": sorted(e.name for e in experiments), "models": models, "trials": trials,
            "runs": {r.info.run_id: (r.info.status, r.data.metrics, r.data.tags) for r in runs}}


def _reproduce_leaves_the_user_store_alone(smoke_cfg, monkeypatch, user_uri: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user_uri)  # outranks every config's tracking.uri
    original = transfer_learning(smoke_cfg)
    assert original.tracking_uri == user_uri
    before = _store(user_uri, smoke_cfg.tuning.storage)
    assert before["models"][smoke_cfg.registry.model_name][0] == ["1"] and len(before["runs"]) == 3

    report = reproduce(original.run_id, user_uri, "final")

    assert report.matches, report.rows
    assert report.reproduced_run not in before["runs"]
    assert _store(user_uri, smoke_cfg.tuning.storage) == before
    assert os.environ["MLFLOW_TRACKING_URI"] == user_uri  # put back after the sandboxed re-run


@pytest.mark.slow
def test_reproduce_with_mlflow_tracking_uri_set_never_writes_to_the_users_sqlite_store(smoke_cfg, tmp_path,
                                                                                        monkeypatch):
    user_uri = f"sqlite:///{tmp_path / 'user.db'}"
    _reproduce_leaves_the_user_store_alone(smoke_cfg, monkeypatch, user_uri)

    # a tampered record no longer reproduces: exit 1, the metric named (read from $MLFLOW_TRACKING_URI)
    client = MlflowClient(user_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("smoke").experiment_id],
                                "tags.`prefect.flow_run_id` != ''")
    client.log_metric(run.info.run_id, keys.TARGET_ACC, run.data.metrics[keys.TARGET_ACC] + 0.25)
    tampered = _store(user_uri, smoke_cfg.tuning.storage)
    result = CliRunner().invoke(app, ["reproduce", run.info.run_id])
    assert result.exit_code == 1, result.output
    assert keys.TARGET_ACC in result.output and "≠" in result.output and "differs" in result.output
    assert _store(user_uri, smoke_cfg.tuning.storage) == tampered


@pytest.mark.slow
def test_reproduce_with_mlflow_tracking_uri_set_never_writes_to_the_users_tracking_server(smoke_cfg, tmp_path,
                                                                                          monkeypatch):
    server = start_mlflow(f"sqlite:///{tmp_path / 'server.db'}", artifacts=str(tmp_path / "artifacts"),
                          log_file=tmp_path / "mlflow.log")
    try:
        _reproduce_leaves_the_user_store_alone(smoke_cfg, monkeypatch, server.url)
    finally:
        stop(server.process)


def _run(metrics: dict[str, float], **tags: str):
    return SimpleNamespace(data=SimpleNamespace(metrics=metrics, tags={"model.sha256": "a" * 64, **tags}))


def test_compare_flags_the_differing_metric_only():
    original = _run({keys.TARGET_ACC: 0.80, keys.GAIN: 0.10, keys.SHIFT_MMD2: 0.3})
    again = _run({keys.TARGET_ACC: 0.70, keys.GAIN: 0.10, keys.SHIFT_MMD2: 0.3})
    rows = {row.name: row for row in compare(original, again, 0.0)}
    assert not rows[keys.TARGET_ACC].ok and (rows[keys.TARGET_ACC].original, rows[keys.TARGET_ACC].reproduced) == (
        "0.800000", "0.700000")
    assert rows[keys.GAIN].ok and rows[keys.SHIFT_MMD2].ok and rows["model.sha256"].ok
    assert keys.SOURCE_ACC not in rows  # on neither side: not compared
    assert not Report("a", "b", "final", tuple(rows.values()), ()).matches
    assert Report("a", "a", "final", tuple(compare(original, original, 0.0)), ()).matches


def test_compare_tolerance_and_missing_values():
    original, again = _run({keys.TARGET_ACC: 0.80}), _run({keys.TARGET_ACC: 0.79}, **{"model.sha256": "b" * 64})
    ok = {tol: {row.name: row.ok for row in compare(original, again, tol)} for tol in (0.0, 0.005, 0.02)}
    assert ok[0.02] == {keys.TARGET_ACC: True, "model.sha256": True}  # within tolerance; weights not compared
    assert ok[0.005] == {keys.TARGET_ACC: False, "model.sha256": True}  # beyond it
    assert ok[0.0] == {keys.TARGET_ACC: False, "model.sha256": False}  # exact: weights must be identical too
    (missing, _) = compare(original, _run({}), 1.0)
    assert (missing.name, missing.reproduced, missing.ok) == (keys.TARGET_ACC, "-", False)


def test_provenance_warnings_name_what_changed():
    tags = {"git.commit": "abc", "git.dirty": "false", "data.fingerprint": "f", "env.torch": "2.5.0",
            "env.device": "cpu"}
    requirements = "numpy==2.0.0\ntorch==2.5.0\n"
    assert provenance_warnings(tags, dict(tags), requirements, requirements) == []
    (code,) = provenance_warnings(tags, {**tags, "git.commit": "def"}, requirements, requirements)
    assert code == "code differs from the record: git.commit abc → def"
    (env,) = provenance_warnings(tags, {**tags, "env.torch": "2.6.0"}, requirements, requirements)
    assert env.startswith("environment differs") and "env.torch 2.5.0 → 2.6.0" in env
    (packages,) = provenance_warnings(tags, tags, requirements, "numpy==2.1.0\ntorch==2.5.0\n")
    assert "2 changed requirement lines" in packages and "+numpy==2.1.0" in packages


def test_cli_reproduce_exits_1_naming_the_metric_and_prints_the_warnings(monkeypatch):
    rows = compare(_run({keys.TARGET_ACC: 0.8, keys.GAIN: 0.1}), _run({keys.TARGET_ACC: 0.7, keys.GAIN: 0.1}), 0.0)
    warnings = ("code differs from the record: git.commit abc → def",)
    monkeypatch.setattr(reproduction, "reproduce", lambda *a: Report("r1", "r2", "final", tuple(rows), warnings))
    result = CliRunner().invoke(app, ["reproduce", "r1", "--tracking-uri", "sqlite:///unused.db"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if keys.TARGET_ACC in line)
    assert "≠" in line and "0.800000" in line and "0.700000" in line
    assert "warning: code differs from the record: git.commit abc → def" in result.output
    assert "differs (tolerance 0.0)" in result.output
