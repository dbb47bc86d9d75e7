"""Real Prefect (the session-wide test harness from tests/conftest.py) and real MLflow for every test here."""

import pytest


@pytest.fixture(autouse=True)
def _real_backends(prefect_backend, no_ambient_tracking_uri):
    yield
