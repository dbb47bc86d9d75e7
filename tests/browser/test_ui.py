"""The UIs a user opens, rendered by headless Chromium against real servers on localhost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse

import pytest
from mlflow import MlflowClient

from scripts.chromium import dump_dom
from tests.conftest import CONF, ROOT
from torchtransfer_cli.servers import start_mlflow, start_prefect, stop
from torchtransfer_flows.transfer import transfer_learning

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_mlflow_ui_shows_the_parent_run_its_trials_and_the_compare_view(smoke_cfg, tmp_path):
    summary = transfer_learning(smoke_cfg)
    client = MlflowClient(smoke_cfg.tracking.uri)
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    parent = client.get_run(summary.run_id)
    trials = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{summary.run_id}'")
    server = start_mlflow(smoke_cfg.tracking.uri, log_file=tmp_path / "mlflow.log")
    try:
        runs_page = dump_dom(f"{server.url}/#/experiments/{exp_id}/runs")
        assert parent.info.run_name in runs_page
        shown = re.search(r"(\d+)\s*matching runs", re.sub(r"<[^>]*>", " ", runs_page))
        assert shown and int(shown.group(1)) == 1 + len(trials)  # the parent and every trial run
        ids = [summary.run_id, trials[0].info.run_id]
        query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([exp_id])})
        compare = dump_dom(f"{server.url}/#/compare-runs?{query}")
        assert parent.info.run_name in compare and trials[0].info.run_name in compare
        assert "hp.lr" in compare  # the parameter table rendered
    finally:
        stop(server.process)


def test_prefect_ui_shows_the_deployment_with_its_schedule(tmp_path):
    server = start_prefect(home=tmp_path / "prefect-home", log_file=tmp_path / "prefect.log")
    try:
        env = {**os.environ, "PREFECT_API_URL": f"{server.url}/api"}
        deployed = subprocess.run([sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "deploy",
                                   "--file", str(CONF / "deployments.yaml"), "--name", "nightly-mnist-usps"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert deployed.returncode == 0, deployed.stderr
        deployment_id = deployed.stdout.rsplit("(", 1)[1].split(")")[0]
        listing = dump_dom(f"{server.url}/deployments")
        assert "nightly-mnist-usps" in listing
        page = dump_dom(f"{server.url}/deployments/deployment/{deployment_id}")
        assert "nightly-mnist-usps" in page
        assert "Europe/Berlin" in page or "02:00" in page or "2:00 AM" in page  # the schedule is shown
    finally:
        stop(server.process)
