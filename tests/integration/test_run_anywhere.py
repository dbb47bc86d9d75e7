"""`torchtransfer run` from an empty folder: the packaged default under the smoke experiment, the real console
script in a subprocess; the stores land in that folder, the experiment is a model-training one, and the parent
and trial runs carry names a person can tell apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import CONF
from torchtransfer import keys

SCRIPT = Path(sys.executable).with_name("torchtransfer")  # what a user who installed the package types


def test_run_from_an_empty_folder_completes_the_smoke_experiment(cache_dir, tmp_path):
    folder = tmp_path / "anywhere"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # its own temporary Prefect server
    cmd = [str(SCRIPT), "run", "-q", "-c", str(CONF / "smoke.yaml"), "--set", f"cache_dir={cache_dir}",
           "--set", "device=cpu"]
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tuned target acc" in done.stdout
    assert {"mlflow.db", "optuna.db", "mlruns"} <= {p.name for p in folder.iterdir()}  # stored where it ran

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    assert experiment.tags[keys.EXPERIMENT_KIND_TAG] == keys.EXPERIMENT_KIND
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    flow_run_name = parent.data.tags["prefect.flow_run_name"]
    assert flow_run_name and parent.info.run_name == f"smoke · mnist→usps · fixmatch+shot · {flow_run_name}"
    assert parent.info.run_id in done.stdout  # the summary table, whole in a pipe
    trials = sorted(r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
    assert trials == [f"trial {n} · {parent.info.run_name}" for n in (0, 1)]
