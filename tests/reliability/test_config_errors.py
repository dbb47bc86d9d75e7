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
    "empty split": ("data:\n  target:\n    val: 0\n", [], "data.target.val"),
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
