"""Faults: an MLflow server that goes away mid-run, a Prefect server that is not there, leaked secrets."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
import time

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import ROOT
from torchtransfer_cli.servers import free_port, start_mlflow, stop
from torchtransfer_flows import OFFLINE_DEFAULTS
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
    # MLflow's error for a request it gave up on, raised while handling requests' refused connection (perhaps
    # via another such MlflowException: a bookkeeping call that failed while the first failure was handled)
    chain = [failure.value]
    while chain[-1].__context__ is not None:
        chain.append(chain[-1].__context__)
    assert type(failure.value) is MlflowException, repr(failure.value)
    assert any(isinstance(e, requests.exceptions.ConnectionError) and "Connection refused" in str(e) for e in chain), \
        [repr(e) for e in chain]

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


RETRIES, BACKOFF = 3, 1.0  # the README's "bounded retries (3, backoff 1 s)"
JITTER = 1.0  # MLFLOW_HTTP_REQUEST_BACKOFF_JITTER's default: up to 1 s more on each delayed retry
SLACK = 3.0  # request handling on a loaded machine
# urllib3 2's Retry: no wait before the 1st retry, then BACKOFF * 2**(k-1) (+ jitter) before the k-th
WAITS = [0.0] + [BACKOFF * 2 ** (k - 1) for k in range(2, RETRIES + 1)]


class _Unavailable(socketserver.ThreadingTCPServer):
    """A "tracking server" on 127.0.0.1 that counts requests and answers each with 503, or hangs up."""

    daemon_threads = True

    def __init__(self, mode: str):
        self.mode, self.hits = mode, []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            if not (chunk := self.request.recv(65536)):
                return
            head += chunk
        self.server.hits.append(time.monotonic())
        if self.server.mode == "503":
            self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.slow  # waits out MLflow's real retry backoff (~7 s a case)
@pytest.mark.parametrize(("mode", "cause"), [("503", requests.exceptions.RetryError),
                                             ("hang-up", requests.exceptions.ConnectionError),
                                             ("refused", requests.exceptions.ConnectionError)])
def test_an_unavailable_tracking_server_costs_1_plus_3_attempts_with_exponential_backoff(monkeypatch, mode, cause):
    """The README's "3 retries, backoff 1 s" (OFFLINE_DEFAULTS): 4 requests, waits 0, 2, 4 s (+ <1 s jitter)."""
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(var, OFFLINE_DEFAULTS[var])
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", raising=False)
    server = _Unavailable(mode)
    port = server.server_address[1]
    if mode == "refused":
        server.server_close()  # nothing listens on the port any more: each attempt is refused
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(MlflowException) as failure:
            MlflowClient(f"http://127.0.0.1:{port}").get_experiment_by_name("smoke")
        elapsed = time.monotonic() - started
    finally:
        if mode != "refused":
            server.shutdown()
            server.server_close()
    assert type(failure.value) is MlflowException and isinstance(failure.value.__context__, cause), \
        repr(failure.value.__context__)
    assert sum(WAITS) <= elapsed < sum(WAITS) + JITTER * (RETRIES - 1) + SLACK, f"gave up after {elapsed:.1f} s"
    if mode != "refused":
        assert len(server.hits) == 1 + RETRIES
        gaps = [b - a for a, b in zip(server.hits, server.hits[1:], strict=False)]
        for gap, wait in zip(gaps, WAITS, strict=True):
            assert wait <= gap < wait + JITTER + SLACK, (gaps, WAITS)
    settings = [OFFLINE_DEFAULTS[f"MLFLOW_HTTP_REQUEST_{name}"] for name in ("MAX_RETRIES", "BACKOFF_FACTOR")]
    assert settings == [str(RETRIES), f"{BACKOFF:g}"], "the README's numbers are no longer the defaults"


@pytest.mark.slow  # a CLI subprocess
def test_no_prefect_server_at_the_configured_url_is_a_clear_message(tmp_path):
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api", "PREFECT_HOME": str(tmp_path)}
    cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "run", "-c", "conf/default.yaml",
           "-c", "conf/smoke.yaml", "--set", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "no Prefect server answers at PREFECT_API_URL=http://127.0.0.1:" in " ".join(result.stderr.split())
    assert not (tmp_path / "mlflow.db").exists()
