"""Local Prefect and MLflow servers on 127.0.0.1 (``torchtransfer ui``, and the server-backed tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from torchtransfer_flows import OFFLINE_DEFAULTS


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    """The console script next to this interpreter (the project's venv), else on PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy within {timeout:.0f} s")


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc (macOS): a group of zombies looks alive until reaped
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:  # /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group(process: subprocess.Popen, timeout: float) -> bool:
    """Reap the leader and wait until its whole group is gone; False if members remain after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        process.poll()
        if not _group_alive(process.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a server started in its own session and every process of its group (MLflow's uvicorn and huey
    workers, Prefect's services): SIGTERM the group, wait up to ``timeout`` s for all of it to exit, then
    SIGKILL what is left. Also sweeps the group when the leader itself has already exited."""
    try:
        leads_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        leads_group = True  # gone and reaped: its group (if any member is left) still has its pid
    if not leads_group:  # started without a session of its own: stop just the process
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        return
    _signal_group(process.pid, signal.SIGTERM)
    if not _wait_group(process, timeout):
        _signal_group(process.pid, signal.SIGKILL)
        _wait_group(process, 5.0)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:  # unkillable (D state): leave it to the caller's report
        pass


def _start(name: str, cmd: list[str], health: str, url: str, env: dict[str, str], log_file: Path | None) -> Server:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(health, process)
    except BaseException:
        stop(process)
        raise
    return Server(name, url, process)


def start_prefect(host: str = "127.0.0.1", port: int | None = None, home: Path | None = None,
                  log_file: Path | None = None, env: dict[str, str] | None = None) -> Server:
    """``prefect server start`` (analytics off); ``home`` isolates its database and settings; ``env`` adds
    variables, e.g. ``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`` for a PostgreSQL database."""
    port = port or free_port(host)
    env = {**os.environ, **OFFLINE_DEFAULTS, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(env or {})}
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)
    url = f"http://{host}:{port}"
    env["PREFECT_UI_API_URL"] = f"{url}/api"  # the UI in the browser must call this server, nothing else
    cmd = [_bin("prefect"), "server", "start", "--host", host, "--port", str(port)]
    return _start("Prefect", cmd, f"{url}/api/health", url, env, log_file)


def start_mlflow(backend_uri: str, host: str = "127.0.0.1", port: int | None = None,
                 artifacts: str | None = None, log_file: Path | None = None) -> Server:
    """``mlflow server --workers 1`` on ``backend_uri`` (telemetry off)."""
    port = port or free_port(host)
    env = {**os.environ, **OFFLINE_DEFAULTS}
    url = f"http://{host}:{port}"
    cmd = [_bin("mlflow"), "server", "--backend-store-uri", backend_uri, "--host", host, "--port", str(port),
           "--workers", "1"]
    if artifacts:
        cmd += ["--artifacts-destination", artifacts]
    return _start("MLflow", cmd, f"{url}/health", url, env, log_file)


@contextmanager
def local_ui(backend_uri: str, host: str = "127.0.0.1", prefect_port: int = 4200,
             mlflow_port: int = 5000) -> Iterator[list[Server]]:
    """Both servers, stopped (in reverse order) when the block exits, Ctrl-C included."""
    with ExitStack() as stack:
        servers = []
        for start in (lambda: start_prefect(host, prefect_port), lambda: start_mlflow(backend_uri, host, mlflow_port)):
            server = start()
            stack.callback(stop, server.process)
            servers.append(server)
        yield servers


def check_prefect_api(timeout: float = 5.0) -> None:
    """When ``PREFECT_API_URL`` is set, make sure a Prefect server answers there, else say what to do."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return  # Prefect starts a temporary server for this process
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            if response.status == 200:
                return
    except OSError as exc:
        reason = str(getattr(exc, "reason", exc))
    else:
        reason = f"HTTP {response.status}"
    raise ConnectionError(f"no Prefect server answers at PREFECT_API_URL={url} ({reason}). Start one "
                          "(`torchtransfer ui` or `prefect server start`), or unset PREFECT_API_URL to let each "
                          "run start a temporary server")


def configured_api_url() -> str | None:
    """The Prefect API this process would talk to: ``PREFECT_API_URL`` or the active profile's setting."""
    from prefect.settings import get_current_settings

    return os.environ.get("PREFECT_API_URL") or get_current_settings().api.url
