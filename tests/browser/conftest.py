"""Browser tests need Debian's chromium: skipped without it on a developer machine, a failure in CI."""

import os

import pytest

from scripts.chromium import chromium


@pytest.fixture(autouse=True)
def _needs_chromium(prefect_backend, no_ambient_tracking_uri):
    if chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must install chromium (apt-get install chromium) for the browser tests")
        pytest.skip("chromium not installed (apt-get install chromium)")
