"""Reliability cases run against the same real backends as the integration tests."""

import pytest


@pytest.fixture(autouse=True)
def _real_backends(prefect_backend, no_ambient_tracking_uri):
    yield
