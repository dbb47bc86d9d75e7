"""kill -9 in the middle of a registration: the next run finds the half-made version and removes it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from torchtransfer import registry
from torchtransfer_flows.transfer import transfer_learning

KILL_MID_REGISTRATION = """
import os, signal, sys
from mlflow import MlflowClient
from torchtransfer import registry
uri, name, exp_id = sys.argv[1:]
client = MlflowClient(uri)
run = client.create_run(exp_id)                      # like a flow's parent run, left RUNNING by the kill
source = client.get_model_version(name, "1").source  # an already logged model
client.set_model_version_tag = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # dies after create
registry.register(client, name, run.info.run_id, lambda: source, {"test.target_acc": "0.5"})
"""


@pytest.mark.slow
def test_a_version_left_half_made_by_kill_9_is_removed_by_the_next_run(smoke_cfg):
    name = smoke_cfg.registry.model_name
    transfer_learning(smoke_cfg)
    client = MlflowClient(smoke_cfg.tracking.uri)
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    killed = subprocess.run([sys.executable, "-c", KILL_MID_REGISTRATION, smoke_cfg.tracking.uri, name, exp_id],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    half = client.get_model_version(name, "2")
    assert registry.COMPLETE_TAG not in half.tags and half.aliases == []  # no alias, no metrics: half-made

    # young and its run still RUNNING: it could be a registration in progress, so it is left alone
    assert registry.remove_abandoned(client, name, "another-run", grace_s=600) == []

    cfg = smoke_cfg.model_copy(update={"registry": smoke_cfg.registry.model_copy(update={"incomplete_grace_s": 0})})
    summary = transfer_learning(cfg)
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    assert "2" not in versions and summary.version == "3"
    assert versions["3"].tags[registry.COMPLETE_TAG] == "true"
    cleanup = [e for e in registry.read_history(client, name) if e["kind"] == "cleanup"]
    assert [e["version"] for e in cleanup] == ["2"] and "left incomplete" in cleanup[0]["reason"]
