"""Two flow runs at once on the embedded default stores (SQLite MLflow, SQLite Optuna, one PREFECT_HOME)."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT


@pytest.mark.slow
def test_two_flow_runs_at_once_both_complete_and_nothing_is_lost(cache_dir, tmp_path):
    tracking, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # both processes share it, as two `make run` would
    cmd = [sys.executable, "-c", "from torchtransfer.cli import main; main()", "run", "-c", "conf/default.yaml",
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
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials) and len(trials) >= 2
    versions = client.search_model_versions("name = 'torchtransfer-smoke'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in parents)
