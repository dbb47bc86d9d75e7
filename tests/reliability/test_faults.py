"""Faults: an MLflow server that goes away mid-run, a Prefect server that is not there, leaked secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT
from torchtransfer_cli.servers import free_port, start_mlflow, stop
from torchtransfer_flows.transfer import transfer_learning

SECRET = "s3cret-pw"


def _kill_when_tuning_starts(uri: str, process, stop_event: threading.Event) -> None:
    client = MlflowClient(uri)
    while not stop_event.is_set():
        try:
            exp = client.get_experiment_by_name("smoke")
            if exp and client.search_runs([exp.experiment_id], "tags.`optuna.trial_number` != ''"):
                stop(process)
                return
        except Exception:
            pass
        time.sleep(0.3)


@pytest.mark.slow
def test_mlflow_server_lost_mid_run_fails_boundedly_then_the_run_is_closed_and_no_secret_leaks(
        smoke_cfg, tmp_path, caplog):
    port = free_port()
    backend, artifacts = f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts")
    server = start_mlflow(backend, port=port, artifacts=artifacts, log_file=tmp_path / "mlflow.log")
    uri = f"http://tt:{SECRET}@127.0.0.1:{port}"  # credentials in the URL must never be written anywhere
    cfg = smoke_cfg.model_copy(update={"tracking": smoke_cfg.tracking.model_copy(update={"uri": uri})})
    done = threading.Event()
    killer = threading.Thread(target=_kill_when_tuning_starts, args=(uri, server.process, done), daemon=True)
    killer.start()
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        transfer_learning(cfg)
    elapsed = time.monotonic() - started
    done.set()
    assert server.process.poll() is not None, "the server was never stopped: tuning did not start?"
    assert elapsed < 240, f"bounded retries: failed after {elapsed:.0f} s"
    assert "127.0.0.1" in str(failure.value) or "Connection" in type(failure.value).__name__ + str(failure.value)

    server = start_mlflow(backend, port=port, artifacts=artifacts, log_file=tmp_path / "mlflow.log")
    try:
        client = MlflowClient(uri)
        exp_id = client.get_experiment_by_name("smoke").experiment_id
        (left,) = client.search_runs([exp_id], "tags.`prefect.flow_run_id` != ''")
        assert left.info.status == "RUNNING"  # the server was gone when the flow tried to close it
        summary = transfer_learning(cfg)  # the next run closes it
        closed = client.get_run(left.info.run_id)
        assert closed.info.status == "FAILED" and "ended Failed" in closed.data.tags["torchtransfer.closed_reason"]
        runs = client.search_runs([exp_id])
        written = [str(r.data.params) + str(r.data.tags) for r in runs]
        written.append(open(client.download_artifacts(summary.run_id, "config/resolved.yaml", str(tmp_path))).read())
        written.append(caplog.text)
        written.append(str(summary))
        assert not [w for w in written if SECRET in w]
    finally:
        stop(server.process)


def test_no_prefect_server_at_the_configured_url_is_a_clear_message(tmp_path):
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api", "PREFECT_HOME": str(tmp_path)}
    cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "run", "-c", "conf/default.yaml",
           "-c", "conf/smoke.yaml", "--set", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "no Prefect server answers at PREFECT_API_URL=http://127.0.0.1:" in " ".join(result.stderr.split())
    assert not (tmp_path / "mlflow.db").exists()
