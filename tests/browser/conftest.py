"""Browser tests need Debian's chromium: skipped without it on a developer machine, a failure in CI."""

import pytest

from scripts.chromium import chromium
from tests.conftest import require_service


@pytest.fixture(autouse=True)
def _needs_chromium(prefect_backend, no_ambient_tracking_uri):
    if chromium() is None:
        require_service("chromium is not installed (apt-get install chromium)")
