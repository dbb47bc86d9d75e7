"""PostgreSQL-backed real servers for the scale-out tests.

``TORCHTRANSFER_PG_URL`` (``postgresql://user:password@host:port``, e.g. from ``eval "$(scripts/postgres.sh
start)"``) names a server where these fixtures may create and drop databases. Without it the ``postgres``
tests are skipped on a developer machine and fail in CI (``tests.conftest.in_ci``; ``.ci/run`` provides it).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_service
from torchtransfer_cli.servers import Server, start_mlflow, start_prefect, stop

PG_ENV = "TORCHTRANSFER_PG_URL"


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get(PG_ENV, "").rstrip("/")
    if not url:
        require_service(f"{PG_ENV} is not set: start PostgreSQL with `eval \"$(scripts/postgres.sh start)\"` "
                        "(.ci/run does this)")
    return url


@pytest.fixture(autouse=True)
def _postgres_marked(request):
    """Every test here needs PostgreSQL: resolving ``pg_url`` skips (or, in CI, fails) it when absent."""
    if request.node.get_closest_marker("postgres"):
        request.getfixturevalue("pg_url")


@pytest.fixture
def pg_database(pg_url):
    """A factory of fresh, uniquely named databases (dropped afterwards); returns the database's URL."""
    import psycopg

    created: list[str] = []

    def admin(sql: str) -> None:  # CREATE/DROP DATABASE cannot run inside a transaction: autocommit
        conn = psycopg.connect(f"{pg_url}/postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def make(purpose: str) -> str:
        name = f"tt_{purpose}_{uuid.uuid4().hex[:8]}"
        admin(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{pg_url}/{name}"

    yield make
    for name in created:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Stack:
    """Prefect and MLflow servers on PostgreSQL, and an Optuna storage URL on PostgreSQL."""

    prefect: Server
    mlflow: Server
    optuna_url: str
    prefect_db: str
    mlflow_db: str
    logs: Path

    @property
    def prefect_api(self) -> str:
        return f"{self.prefect.url}/api"


@pytest.fixture
def pg_stack(pg_database, tmp_path) -> Stack:
    logs = tmp_path / "logs"
    logs.mkdir()
    prefect_db, mlflow_db, optuna_url = pg_database("prefect"), pg_database("mlflow"), pg_database("optuna")
    asyncpg_url = prefect_db.replace("postgresql://", "postgresql+asyncpg://", 1)
    prefect = start_prefect(home=tmp_path / "prefect-home", log_file=logs / "prefect.log",
                            env={"PREFECT_API_DATABASE_CONNECTION_URL": asyncpg_url})
    try:
        mlflow = start_mlflow(mlflow_db, artifacts=str(tmp_path / "artifacts"), log_file=logs / "mlflow.log")
    except BaseException:
        stop(prefect.process)
        raise
    try:
        yield Stack(prefect, mlflow, optuna_url, prefect_db, mlflow_db, logs)
    finally:
        stop(mlflow.process)
        stop(prefect.process)
