"""The search and tuning sections: the Optuna search space (ranges, the first trial) and how the study runs."""

from __future__ import annotations

from pydantic import Field, model_validator

from torchtransfer.config.sections import Method, Objective, Pruner, Strategy, _Strict


class FloatRange(_Strict):
    low: float
    """Lower bound."""
    high: float
    """Upper bound."""
    log: bool = False
    """Sample on a log scale."""

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


class IntRange(_Strict):
    low: int = Field(ge=1)
    """Lower bound."""
    high: int = Field(ge=1)
    """Upper bound."""

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class FirstTrial(_Strict):
    lr: float = Field(gt=0)
    """Learning rate of the first trial."""
    weight_decay: float = Field(ge=0)
    """L2 penalty of the first trial."""
    epochs: int = Field(ge=1)
    """Fine-tuning epochs of the first trial."""
    strategy: Strategy
    """Strategy of the first trial (left to the sampler when it is not in `search.strategy`)."""


class SearchConfig(_Strict):
    lr: FloatRange = FloatRange(low=1e-3, high=5e-2, log=True)
    """Learning-rate range `{low, high, log}`."""
    weight_decay: FloatRange = FloatRange(low=1e-6, high=1e-3, log=True)
    """L2-penalty range `{low, high, log}`."""
    epochs: IntRange = IntRange(low=2, high=5)
    """Fine-tuning epochs `{low, high}`."""
    strategy: tuple[Strategy, ...] = Field(("feature_extraction", "fine_tune"), min_length=1)
    """Strategies to choose from: `feature_extraction`, `fine_tune`, `partial`, `gradual`."""
    method: tuple[Method, ...] = Field(("none",), min_length=1)
    """Methods to choose from (as `adaptation.method`); absent: `[adaptation.method]`."""
    adaptation_weight: FloatRange = FloatRange(low=0.0, high=1.0)
    """Alignment weight λ of the chosen method `{low, high, log}` (exists only when the method is not `none`)."""
    first: FirstTrial | None = None
    """A recipe a new study tries first (its trial 0), each value clipped into its range; the method and λ are
    sampled. The packaged default is the adaptation benchmark's recipe (docs/benchmarks.md), so the tuned
    result is never below it on the tuning objective; null: every trial is sampled."""


class TuningConfig(_Strict):
    objective: Objective = "target_val_acc"
    """What trials, pruning, early stopping and the best epoch maximise: `target_val_acc` (labelled target validation
    images) or a label-free validator (`im snd bnm dev class_ami source_val_acc`); `auto`: `target_val_acc`, or
    `im` when `data.target.val` is 0 (chosen by `benchmarks/validators.py` and the flow: docs/tuning.md)."""
    n_trials: int = Field(8, ge=1)
    """Finished trials the study should hold; a re-run continues the same study."""
    timeout: float | None = Field(None, gt=0)
    """Seconds to stop tuning after, or null."""
    storage: str = "sqlite:///optuna.db"
    """Optuna storage URL: `sqlite:///f.db`, `postgresql://u:pw@host/db`, `journal:///path/study.log`."""
    pruner: Pruner = "median"
    """`median`, `hyperband` or `none`: stop unpromising trials early on the per-epoch objective."""
    n_workers: int = Field(1, ge=1)
    """Trials at once (Dask task runner); > 1 needs a PostgreSQL or journal storage."""
    dask_address: str | None = None
    """An existing Dask scheduler (`tcp://host:8786`); null starts a LocalCluster."""

    @model_validator(mode="after")
    def _shareable_storage(self) -> TuningConfig:
        check_parallel(self.storage, self.n_workers)
        return self


def check_parallel(storage: str, n_workers: int) -> None:
    """Refuse several trial workers on SQLite, which cannot be shared safely by several processes."""
    if n_workers > 1 and storage.startswith("sqlite:"):
        raise ValueError(f"tuning.n_workers={n_workers} needs a storage that several processes can share; "
                         f"{storage!r} is SQLite. Use journal:///path/to/study.log (a shared file system) or "
                         "postgresql://user:password@host/db")
