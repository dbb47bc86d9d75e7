"""Typed experiment configuration: YAML files deep-merged left to right, dotted overrides, strict validation.

Every model forbids unknown keys, so a misspelt key fails before anything runs. Errors name the file(s)
and the dotted path of the field, e.g. ``conf/x.yaml: train.lr: Input should be greater than 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from torchtransfer.names import (
    BACKBONES,
    DOMAINS,
    LABELLED_OBJECTIVE,
    METHODS,
    OBJECTIVES,
    OPTIMIZERS,
    PRUNERS,
    SCHEDULES,
    STRATEGIES,
)
from torchtransfer.trees import deep_merge, flatten, section_hash
from torchtransfer.uris import redact

DEFAULT_CONFIG = Path(__file__).with_name("conf") / "default.yaml"  # package data; conf/default.yaml links to it

# The config's vocabularies live in torchtransfer.names, which imports nothing: validating a config never loads
# torch (tests/unit/test_names.py checks them against the modules that implement them).
Domain = Literal[DOMAINS]
Backbone = Literal[BACKBONES]
Method = Literal[METHODS]
Strategy = Literal[STRATEGIES]
Optimizer = Literal[OPTIMIZERS]
Schedule = Literal[SCHEDULES]
Pruner = Literal[PRUNERS]
Objective = Literal[OBJECTIVES]


class ConfigError(ValueError):
    """A config file, override or value is invalid; the message names the file and the dotted field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DomainConfig(_Strict):
    name: Domain
    train: int = Field(ge=1)
    val: int = Field(ge=0)  # target 0: no labelled target image for tuning or selection (a label-free objective)
    test: int = Field(ge=1)
    train_labelled: float = Field(1.0, ge=0.0, le=1.0)


class DataConfig(_Strict):
    source: DomainConfig
    target: DomainConfig

    @model_validator(mode="after")
    def _different_domains(self) -> DataConfig:
        if self.source.name == self.target.name:
            raise ValueError(f"source and target are both {self.source.name!r}; pick two different domains")
        if self.source.val == 0:
            raise ValueError("data.source.val is 0: the source model is selected on labelled source validation images")
        if self.source.train_labelled == 0:
            raise ValueError("data.source.train_labelled is 0: the source needs labelled training images")
        return self


class ShiftConfig(_Strict):
    max_samples: int = Field(500, ge=4)
    n_permutations: int = Field(1000, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)  # significance level of the permutation test
    steer: bool = True  # no significant shift (p ≥ alpha) → adaptation leaves the search space


class ModelConfig(_Strict):
    backbone: Backbone = "lenet"
    pretrained: bool = False  # ImageNet weights (resnets: torch cache; efficientnet_lite0: its package)
    num_classes: int = Field(10, ge=2)


class PretrainConfig(_Strict):
    # auto: feature_extraction for a backbone with ImageNet weights (model.pretrained), else fine_tune
    strategy: Literal["auto", "feature_extraction", "fine_tune"] = "auto"
    epochs: int = Field(10, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(64, ge=1)
    augment: bool = True
    augment_scale: tuple[float, float] = (0.9, 1.1)  # random-affine zoom range (< 1 shrinks)


class TrainConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    augment: bool = True
    augment_scale: tuple[float, float] = (0.9, 1.1)
    optimizer: Optimizer = "sgd"
    nesterov: bool = False
    lr_mult: float = Field(1.0, ge=0)
    schedule: Schedule = "constant"
    warmup_epochs: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    clip_grad_norm: float | None = Field(None, gt=0)
    patience: int | None = Field(None, ge=1)
    unfreeze: int = Field(1, ge=0)


class AdaptationConfig(_Strict):
    method: Method = "none"
    schedule: Literal["ramp", "constant"] = "ramp"
    entropy_weight: float = Field(0.0, ge=0)
    max_importance_weight: float = Field(10.0, gt=1)
    hidden: int = Field(256, ge=1)


class FloatRange(_Strict):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


class IntRange(_Strict):
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class SearchConfig(_Strict):
    lr: FloatRange = FloatRange(low=1e-3, high=5e-2, log=True)
    weight_decay: FloatRange = FloatRange(low=1e-6, high=1e-3, log=True)
    epochs: IntRange = IntRange(low=2, high=5)
    strategy: tuple[Strategy, ...] = Field(("feature_extraction", "fine_tune"), min_length=1)
    method: tuple[Method, ...] = Field(("none",), min_length=1)  # filled from adaptation.method when absent
    adaptation_weight: FloatRange = FloatRange(low=0.0, high=1.0)


class TuningConfig(_Strict):
    # what trials, early stopping and the best epoch maximise: target_val_acc (labelled target validation
    # images) or a label-free validator (torchtransfer.tune.validators)
    objective: Objective = "target_val_acc"
    n_trials: int = Field(8, ge=1)
    timeout: float | None = Field(None, gt=0)
    storage: str = "sqlite:///optuna.db"
    pruner: Pruner = "median"
    n_workers: int = Field(1, ge=1)
    dask_address: str | None = None

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


class TrackingConfig(_Strict):
    uri: str = "sqlite:///mlflow.db"


class RegistryConfig(_Strict):
    model_name: str = Field(min_length=1)
    min_improvement: float = Field(0.0, ge=0.0, le=1.0)
    min_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    incomplete_grace_s: float = Field(600.0, ge=0.0)


class ExperimentConfig(_Strict):
    experiment: str = Field(min_length=1)
    seed: int = Field(0, ge=0)
    cache_dir: str | None = None  # None: $TORCHTRANSFER_CACHE, else ~/.cache/torchtransfer
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataConfig
    shift: ShiftConfig = ShiftConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    adaptation: AdaptationConfig = AdaptationConfig()
    search: SearchConfig = SearchConfig()
    tuning: TuningConfig = TuningConfig()
    tracking: TrackingConfig = TrackingConfig()
    registry: RegistryConfig

    @model_validator(mode="after")
    def _labels_for_the_objective(self) -> ExperimentConfig:
        if self.data.target.val == 0 and self.tuning.objective == LABELLED_OBJECTIVE:
            raise ValueError("data.target.val is 0 (no labelled target validation images) but tuning.objective "
                             f"is {LABELLED_OBJECTIVE!r}; pick a label-free objective, e.g. tuning.objective=im")
        return self

    @model_validator(mode="before")
    @classmethod
    def _method_space(cls, data: Any) -> Any:
        """``search.method`` defaults to ``[adaptation.method]``: the configured method, not searched."""
        if isinstance(data, Mapping):
            search = data.get("search") or {}
            if isinstance(search, Mapping) and "method" not in search:
                adaptation = data.get("adaptation") or {}
                method = adaptation.get("method", "none") if isinstance(adaptation, Mapping) else "none"
                data = {**data, "search": {**search, "method": [method]}}
        return data

    @property
    def cache_path(self) -> Path:
        """The cache folder: ``cache_dir``, or (unset) the library's default, ``$TORCHTRANSFER_CACHE`` or
        ``~/.cache/torchtransfer`` (``torchtransfer.data.datasets.default_cache_dir``)."""
        from torchtransfer.data.datasets import default_cache_dir  # torch: only when a cache is used

        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()

    def record(self) -> RunRecord:
        """What the tracking stage logs of this config, passwords in store URLs hidden."""
        resolved = self.model_dump(mode="json")
        resolved["tuning"]["storage"] = redact(resolved["tuning"]["storage"])
        resolved["tracking"]["uri"] = redact(resolved["tracking"]["uri"])
        return RunRecord(experiment=self.experiment, label=self.label(), sha256=self.sha256(),
                         tracking_uri=self.tracking.uri,
                         params={k: redact(v) for k, v in self.flat().items()}, resolved=resolved,
                         device=self.device, seed=self.seed, n_workers=self.tuning.n_workers)

    def label(self) -> str:
        """What tells this experiment's runs apart in a list: ``mnist-to-usps · mnist→usps · dan`` (the
        experiment, the domain pair, the adaptation methods the search may pick, ``+``-joined)."""
        methods = "+".join(self.search.method)
        return f"{self.experiment} · {self.data.source.name}→{self.data.target.name} · {methods}"

    def sha256(self) -> str:
        """Hash of the resolved config (canonical JSON), used for tags, study names and cache keys."""
        return section_hash(self.model_dump(mode="json"))

    def flat(self) -> dict[str, Any]:
        """The resolved config flattened with dotted keys, e.g. ``{"train.batch_size": 64}``."""
        return flatten(self.model_dump(mode="json"))


@dataclass(frozen=True)
class RunRecord:
    """The config as the flow's parent run records it: name, hash, flattened params, the resolved tree."""

    experiment: str
    label: str  # ExperimentConfig.label(): the start of the parent and trial run names
    sha256: str
    tracking_uri: str  # the configured store (``$MLFLOW_TRACKING_URI`` outranks it)
    params: dict[str, Any]
    resolved: dict[str, Any]
    device: str
    seed: int
    n_workers: int


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if loaded is None:
        raise ConfigError(f"{path}: file is empty; expected a mapping of config keys")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
    return loaded


def _apply_override(tree: dict[str, Any], override: str) -> dict[str, Any]:
    key, sep, raw = override.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE with a dotted key, e.g. train.batch_size=32")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {override!r}: value is not valid YAML: {exc}") from exc
    nested: Any = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return deep_merge(tree, nested)


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{origin}: {dotted}: {err['msg']}")
    return "\n".join(lines)


def _label(path: str | Path) -> str:
    """How an error names a file: the packaged default by its short name, any other as given."""
    return "default.yaml (packaged)" if Path(path).resolve() == DEFAULT_CONFIG.resolve() else str(path)


def load_experiment(*paths: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """An experiment: the packaged default (``DEFAULT_CONFIG``, every key documented) with ``paths`` merged
    on top, then ``overrides``. No paths: the default experiment itself, from any folder. Experiment files
    hold only what differs; one that starts with the default (``-c conf/default.yaml -c x.yaml``) still works.

    Example:
        >>> load_experiment(overrides=["seed=3"]).experiment
        'mnist-to-usps'
    """
    starts_with_default = bool(paths) and Path(paths[0]).resolve() == DEFAULT_CONFIG.resolve()
    return load_config(DEFAULT_CONFIG, *paths[starts_with_default:], overrides=overrides)


def load_config(*paths: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Deep-merge YAML files left to right, apply dotted ``KEY=VALUE`` overrides, then validate.

    Example:
        >>> cfg = load_config("conf/default.yaml", overrides=["tuning.n_trials=3"])
        >>> cfg.tuning.n_trials
        3
    """
    if not paths:
        raise ConfigError("no config file given; pass at least one YAML file, e.g. conf/default.yaml")
    tree: dict[str, Any] = {}
    for path in paths:
        tree = deep_merge(tree, _read_yaml(Path(path)))
    for override in overrides:
        tree = _apply_override(tree, override)
    origin = " + ".join(_label(p) for p in paths) + (" (with --set overrides)" if overrides else "")
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
