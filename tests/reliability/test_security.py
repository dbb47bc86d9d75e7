"""Security: weights-only loading, loopback-only servers, USPS never extracted, no passwords written."""

from __future__ import annotations

import ast
import inspect
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from torchtransfer.data import datasets
from torchtransfer.uris import credentials_to_env, redact
from torchtransfer_cli import orchestration as cli_orchestration
from torchtransfer_cli import servers

PROJECT_CODE = [p for d in ("torchtransfer", "cli", "tasks", "flows", "benchmarks", "scripts")
                for p in (ROOT / d).rglob("*.py")]


def test_every_torch_load_passes_weights_only_true():
    offenders = []
    for path in PROJECT_CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
    assert len(PROJECT_CODE) > 20


def test_cli_servers_bind_loopback_by_default():
    for fn in (servers.start_prefect, servers.start_mlflow, servers.local_ui):
        assert inspect.signature(fn).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(cli_orchestration.ui).parameters["host"].default == "127.0.0.1"


def _other_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outbound interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_torchtransfer_ui_answers_on_loopback_only(tmp_path):
    prefect_port, mlflow_port = servers.free_port(), servers.free_port()
    cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "ui", "--backend",
           f"sqlite:///{tmp_path / 'mlflow.db'}", "--prefect-port", str(prefect_port),
           "--mlflow-port", str(mlflow_port)]
    env = {**__import__("os").environ, "PREFECT_HOME": str(tmp_path)}
    ui = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", mlflow_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", prefect_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("torchtransfer ui did not start both servers")
        other = _other_address()
        if other:
            for port in (prefect_port, mlflow_port):
                with pytest.raises(OSError):
                    socket.create_connection((other, port), timeout=2).close()
    finally:
        servers.stop(ui)
    assert ui.returncode is not None


def test_usps_is_read_from_the_verified_archive_without_extracting_anything(cache_dir):
    before = sorted(p.relative_to(cache_dir) for p in cache_dir.rglob("*"))
    domain = datasets.usps(cache_dir)
    assert len(domain) == 9298
    assert sorted(p.relative_to(cache_dir) for p in cache_dir.rglob("*")) == before


def test_passwords_are_redacted_and_moved_out_of_tracking_uris(monkeypatch):
    assert redact("postgresql://bob:pw@db/x") == "postgresql://bob:***@db/x"
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert credentials_to_env("https://bob:p%40ss@mlflow.example:8443/") == "https://mlflow.example:8443/"
    assert __import__("os").environ["MLFLOW_TRACKING_PASSWORD"] == "p@ss"
    assert credentials_to_env("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
