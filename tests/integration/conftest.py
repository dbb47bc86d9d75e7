"""Real Prefect (a session-wide test harness with its own server and result storage) and real MLflow."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_backend(tmp_path_factory):
    storage = tmp_path_factory.mktemp("prefect-results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(storage))
        with prefect_test_harness(server_startup_timeout=120):
            yield


@pytest.fixture(autouse=True)
def no_ambient_tracking_uri(monkeypatch):
    """Each test's config names its own SQLite store; an outer MLFLOW_TRACKING_URI must not win."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
