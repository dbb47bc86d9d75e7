"""`torchtransfer models NAME`: aliases and metrics whole when stdout is not a terminal (a file, a pipe, a CI log),
and the same data as JSON for scripts, read from a real (SQLite) MLflow registry."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from typer.testing import CliRunner

from torchtransfer import keys
from torchtransfer_cli.app import app

ALIAS = "champion-of-the-nightly-mnist-to-usps-retraining"


def test_models_tables_are_whole_in_a_pipe_and_json_has_the_same_versions(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_registered_model("m")
    for n, acc in ((1, 0.91234), (2, 0.93456)):
        client.create_model_version("m", (tmp_path / f"v{n}").as_uri(), tags={keys.as_tag(keys.TARGET_ACC): str(acc)})
    client.set_registered_model_alias("m", ALIAS, "2")
    client.set_registered_model_alias("m", "challenger", "2")
    result = CliRunner().invoke(app, ["models", "m", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    v2 = next(line for line in result.output.splitlines() if line.startswith("│ 2 "))
    assert f"challenger, {ALIAS}" in v2 and "0.9346" in v2
    listed = json.loads(CliRunner().invoke(app, ["models", "m", "--tracking-uri", uri, "--json"]).output)
    assert [v["version"] for v in listed["versions"]] == [1, 2]
    assert listed["versions"][1]["aliases"] == sorted(["challenger", ALIAS])
    assert listed["versions"][0]["metrics"][keys.as_tag(keys.TARGET_ACC)] == 0.91234
    assert listed["history"] == []
