"""``prepare_data``: build the MNIST→USPS (or other) ``DomainPair`` and hand on a file reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.tracking import RunRef, log_params, log_tags
from torchtransfer.config import ExperimentConfig
from torchtransfer.splits import DomainPair, build_pair


@dataclass(frozen=True)
class DataRef:
    """A prepared ``DomainPair`` on disk, named by its content fingerprint."""

    path: str
    fingerprint: str
    sizes: dict[str, int]

    def load(self) -> DomainPair:
        return DomainPair.load(Path(self.path))


def cache_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.cache_dir).expanduser()


@task(cache_policy=NO_CACHE)
def prepare_data(cfg: ExperimentConfig, run: RunRef) -> DataRef:
    """Load both domains, split them by the seed, fingerprint the result and log it."""
    logger = get_run_logger()
    pair = build_pair(cfg.data, cfg.seed, cache_dir(cfg))
    path = pair.save(cache_dir(cfg) / "prepared" / f"{pair.fingerprint}.pt")
    sizes = pair.sizes()
    logger.info("data %s → %s, fingerprint %s, splits %s", cfg.data.source.name, cfg.data.target.name,
                pair.fingerprint[:12], sizes)
    log_tags(run, {"data.fingerprint": pair.fingerprint})
    log_params(run, {f"data.n_{name}": n for name, n in sizes.items()})
    _log_dataset_inputs(run, pair)
    return DataRef(str(path), pair.fingerprint, sizes)


def _log_dataset_inputs(run: RunRef, pair: DomainPair) -> None:
    """Record each split as an MLflow dataset input (name, digest = fingerprint, size) of the parent run."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = [
        DatasetInput(
            Dataset(name=name, digest=pair.fingerprint[:20], source_type="local",
                    source=f"torchtransfer:{getattr(pair, name).name}",
                    profile=f'{{"num_rows": {len(getattr(pair, name))}}}'),
            tags=[InputTag("mlflow.data.context", name.split("_")[1])],
        )
        for name in pair.sizes()
    ]
    run.client.log_inputs(run.run_id, datasets=inputs)
