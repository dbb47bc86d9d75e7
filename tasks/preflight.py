"""``preflight``: everything that can be found wrong with a run before anything is created — the data (split
sizes against the domains; for folders and manifests every file read once: missing or empty folders, class
sets, manifest columns, undecodable, oversized or escaping files), the Optuna storage and the MLflow store —
reported together as one ``ConfigError`` naming the keys and paths. It runs first in the flow: a mistake
leaves no MLflow run and no study behind (readable images it has read stay in the image cache for the next try).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from torchtransfer.config import ConfigError, DataConfig, ModelConfig
from torchtransfer.data.checks import DataScan, scan_data
from torchtransfer.data.manifest import DataError
from torchtransfer.tune.study import storage_problem
from torchtransfer.uris import tracking_problem, tracking_uri


@task(cache_policy=NO_CACHE)
def preflight(data: DataConfig, model: ModelConfig, storage: str, configured_tracking_uri: str,
              cache: Path) -> DataScan:
    """The data's scan (its classes, the folders' inventories); ``ConfigError`` listing every problem found."""
    problems, scan = [], None
    try:
        scan = scan_data(data, *model.input_shape, cache, model.num_classes)
    except DataError as exc:
        problems += str(exc).splitlines()
    problems += [storage_problem(storage), tracking_problem(tracking_uri(configured_tracking_uri))]
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError("preflight: nothing was started\n" + "\n".join(f"- {p}" for p in problems))
    return scan
