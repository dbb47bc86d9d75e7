"""Determinism and `torchtransfer reproduce`: same config, same machine → same metrics and weights."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from torchtransfer.config import SearchConfig
from torchtransfer_cli.app import app
from torchtransfer_cli.reproduction import pinned_search, reproduce
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
