"""Bad config → exit 2, a message naming the file and the dotted field, and nothing created anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import CONF
from torchtransfer_cli.app import app

CASES = {
    "unknown key": ("train:\n  batchsize: 3\n", [], "train.batchsize"),
    "wrong type": ("tuning:\n  n_trials: many\n", [], "tuning.n_trials"),
    "out-of-range value": ("data:\n  target:\n    train_labelled: 1.5\n", [], "data.target.train_labelled"),
    "YAML syntax error": ("train: [unclosed\n", [], "invalid YAML"),
    "empty file": ("", [], "file is empty"),
    "malformed --set": ("seed: 1\n", ["train.lr"], "expected KEY=VALUE"),
    "empty split": ("data:\n  target:\n    val: 0\ntuning:\n  objective: target_val_acc\n", [], "data.target.val"),
    "accuracy gate without test labels": ("data:\n  target:\n    test: 0\n", [], "registry.gate"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config_exits_2_names_the_field_and_creates_nothing(case, tmp_path, monkeypatch):
    text, sets, expected = CASES[case]
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "experiment.yaml"
    bad.write_text(text)
    args = ["run", "-c", str(CONF / "default.yaml"), "-c", str(bad)]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    if case != "malformed --set":
        assert str(bad) in result.output  # the message names the file
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["experiment.yaml"]  # no mlflow.db, optuna.db, mlruns


def test_missing_file_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "-c", "nope.yaml"])
    assert result.exit_code == 2 and "nope.yaml: config file not found" in result.output
    assert list(Path(tmp_path).iterdir()) == []


PREFLIGHT = {
    "split larger than the domain": (["data.source.train=999999"],
                                     "data.source.train + data.source.val + data.source.test = 999999 + "),
    "unreachable Optuna storage": (["tuning.storage=postgresql://u:pw@127.0.0.1:1/db"],
                                   "tuning.storage: cannot connect to postgresql://u:***@127.0.0.1:1/db"),
    "unreachable MLflow server": (["tracking.uri=http://127.0.0.1:9/"],
                                  "tracking store http://127.0.0.1:9/: the MLflow server does not answer"),
}


@pytest.mark.parametrize("case", PREFLIGHT)
def test_preflight_mistake_exits_2_names_the_key_and_leaves_no_run_or_study(case, tmp_path, monkeypatch):
    """A valid config that cannot run (sizes, stores) stops in the flow's first task: exit 2, the key named,
    no password shown, and no MLflow store, run, study or cache created."""
    sets, expected = PREFLIGHT[case]
    monkeypatch.chdir(tmp_path)
    stores = [f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}",
              f"cache_dir={tmp_path / 'cache'}"]
    args = ["run", "-c", str(CONF / "default.yaml")]
    for s in [*stores, *sets]:  # the case's own setting comes last and wins
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "preflight: nothing was started" in result.output and expected in result.output
    assert ":pw@" not in result.output
    assert list(Path(tmp_path).iterdir()) == []  # no mlflow.db, optuna.db, mlruns or cache
