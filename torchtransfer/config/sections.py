"""The config's sections (every model forbids unknown keys) and the vocabularies they accept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from torchtransfer.keys import GATE_ACCURACY, GATE_MANUAL
from torchtransfer.methods import parse_method
from torchtransfer.names import (
    BACKBONES,
    INPUT_CHANNELS,
    INPUT_SIZES,
    OBJECTIVES,
    OPTIMIZERS,
    PRUNERS,
    SCHEDULES,
    SHIFT_TESTS,
    STRATEGIES,
    TARGET_VALIDATORS,
)

# The config's vocabularies live in torchtransfer.names (and .methods), which import nothing: validating a config
# never loads torch (tests/unit/test_names.py checks them against the modules that implement them).
Backbone = Literal[tuple(BACKBONES)]
# a method: one name of train.adaptation.METHODS, or several as "dan+fixmatch" / [dan, fixmatch]
Method = Annotated[str, BeforeValidator(lambda v: parse_method(v) if isinstance(v, (str, list, tuple)) else v)]
Strategy = Literal[STRATEGIES]
Optimizer = Literal[OPTIMIZERS]
Schedule = Literal[SCHEDULES]
Pruner = Literal[PRUNERS]
Objective = Literal[OBJECTIVES]  # tuning.objective "auto" is resolved by ExperimentConfig
ShiftTest = Literal[SHIFT_TESTS]
Gate = Literal[(GATE_ACCURACY, GATE_MANUAL, *TARGET_VALIDATORS)]


class ConfigError(ValueError):
    """A config file, override or value is invalid; the message names the file and the dotted field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShiftConfig(_Strict):
    max_samples: int = Field(500, ge=4)
    n_permutations: int = Field(1000, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)  # significance level of the permutation test
    test: ShiftTest = "median"  # median: one bandwidth (median heuristic); aggregated: MMDAgg-style collection
    steer: bool = True  # no significant shift (p ≥ alpha) → adaptation leaves the search space


class ModelConfig(_Strict):
    backbone: Backbone = "lenet"
    pretrained: bool = False  # ImageNet weights (resnets: torch cache; efficientnet_lite0: its package)
    num_classes: int | None = Field(None, ge=2)  # None: from the data (the source's classes)
    image_size: int | None = Field(None, ge=8)  # None: the backbone's (models.INPUT_SIZES); every image is resized

    @model_validator(mode="before")
    @classmethod
    def _backbone_size(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("image_size") is None:
            data = {**data, "image_size": INPUT_SIZES.get(data.get("backbone", "lenet"))}
        return data

    @model_validator(mode="after")
    def _lenet_size(self) -> ModelConfig:
        if self.backbone == "lenet" and self.image_size != INPUT_SIZES["lenet"]:
            raise ValueError(f"image_size {self.image_size}: lenet takes {INPUT_SIZES['lenet']}×"
                             f"{INPUT_SIZES['lenet']} images (leave model.image_size unset)")
        return self

    @property
    def input_shape(self) -> tuple[int, int]:
        """(channels, size) of the images the backbone takes (grayscale for lenet, RGB otherwise)."""
        return INPUT_CHANNELS[self.backbone], self.image_size


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


class FixMatchConfig(_Strict):
    threshold: float = Field(0.95, gt=0, le=1)  # τ: a pseudo-label counts when its confidence reaches it
    weight: float = Field(1.0, ge=0)  # μ (ramped by adaptation.schedule)


class ShotConfig(_Strict):
    im_weight: float = Field(1.0, ge=0)  # information maximisation (entropy − diversity)
    pseudo_label_weight: float = Field(0.3, ge=0)  # β: cross-entropy with the clustering pseudo-labels


class AdaptationConfig(_Strict):
    method: Method = "none"
    schedule: Literal["ramp", "constant"] = "ramp"
    entropy_weight: float = Field(0.0, ge=0)
    max_importance_weight: float = Field(10.0, gt=1)
    importance_power: float = Field(1.0, gt=0, le=1)
    hidden: int = Field(256, ge=1)
    source_free: bool = False
    fixmatch: FixMatchConfig = FixMatchConfig()
    shot: ShotConfig = ShotConfig()


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
    gate: Gate = GATE_ACCURACY  # promotion basis: target_test_acc | a label-free validator | manual (never automatic)
    incomplete_grace_s: float = Field(600.0, ge=0.0)
