"""``preflight``: everything that can be found wrong with a run before anything is created — split sizes
against the domains, the Optuna storage and the MLflow store — reported together as one ``ConfigError``
naming the keys. It runs first in the flow: a mistake leaves no MLflow run and no study behind."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from torchtransfer.config import ConfigError, DataConfig
from torchtransfer.data.splits import size_problems
from torchtransfer.tune.study import storage_problem
from torchtransfer.uris import tracking_problem, tracking_uri


@task(cache_policy=NO_CACHE)
def preflight(data: DataConfig, storage: str, configured_tracking_uri: str) -> None:
    """Raise ``ConfigError`` listing every problem found; return quietly when there is none."""
    problems = [*size_problems(data), storage_problem(storage), tracking_problem(tracking_uri(configured_tracking_uri))]
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError("preflight: nothing was started\n" + "\n".join(f"- {p}" for p in problems))
