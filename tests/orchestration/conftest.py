"""A real `prefect server start` (isolated PREFECT_HOME, free port, analytics off) for the whole module."""

from __future__ import annotations

import os

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from torchtransfer_cli.servers import start_prefect, stop


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    server = start_prefect(home=home, log_file=home / "server.log")
    api = f"{server.url}/api"
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            yield api
    finally:
        stop(server.process)


@pytest.fixture
def server_env(prefect_server, tmp_path) -> dict[str, str]:
    """Environment for subprocesses that talk to the test server (and keep results in tmp_path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env.update(PREFECT_API_URL=prefect_server, PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp_path / "results"))
    return env
