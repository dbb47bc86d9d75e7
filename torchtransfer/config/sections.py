"""The config's sections (every model forbids unknown keys) and the vocabularies they accept."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ShiftConfig(_Strict):
    max_samples: int = Field(500, ge=4)
    """Images per domain in the MMD test (a seeded subsample)."""
    n_permutations: int = Field(1000, ge=0)
    """Permutations for the p-value; 0 skips the test (p = 1)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level: p < alpha is a significant shift."""
    test: ShiftTest = "median"
    """`median` (median-heuristic bandwidth) or `aggregated` (bandwidths l_med × 2^-2 … 2^1, the level corrected over
    them)."""
    steer: bool = True
    """No significant shift on source-model features → adaptation (method, weight) leaves the search space."""


DriftValidator = Literal["im", "snd", "bnm", "class_ami"]  # the validators that read target images alone


class DriftConfig(_Strict):
    enabled: bool = False
    """Check the target against the champion's drift reference first: unchanged data or no drift → the run ends
    early (`drift.decision` skip); drift or no champion → retrain."""
    force: bool = False
    """Retrain whatever the check says (the check still runs and is recorded)."""
    validator: DriftValidator = "im"
    """Label-free score of the champion on the new target images (`im snd bnm class_ami`), compared with its score
    on the reference at registration."""
    max_score_drop: float = Field(0.1, ge=0)
    """Retrain when that score fell by more than this below the score at registration."""
    retrain: bool = True
    """`false`: a retrain decision only emits the Prefect event `torchtransfer.drift.retrain` and ends the run,
    leaving the retrain to a deployment trigger on that event."""
    monitoring_experiment: str | None = None
    """MLflow experiment of the drift record over time; null: `<experiment>-monitoring`."""


class ModelConfig(_Strict):
    backbone: Backbone = "lenet"
    """`lenet` (trained on the source first), `resnet18/34/50`, `efficientnet_lite0`."""
    pretrained: bool = False
    """ImageNet weights (resnets: the torch hub cache or `model.weights`; efficientnet_lite0: its package, offline)."""
    weights: str | None = None
    """A file of pretrained weights to start from (a state dict: torchvision's ResNet file, or an EfficientNet-Lite0
    one in place of the packaged weights); needs `model.pretrained: true`. null: the default source above."""
    num_classes: int | None = Field(None, ge=2)
    """Output classes; null: from the data (10 for the digit sets, else the source's class sub-folders)."""
    image_size: int | None = Field(None, ge=8)
    """Every image is resized to this square; null: the backbone's (lenet 28, resnets 32, efficientnet_lite0 224)."""

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
        if self.weights is not None:
            if self.backbone == "lenet":
                raise ValueError("weights: lenet has no pretrained weights (it is trained on the source); "
                                 "pick a resnet or efficientnet_lite0 backbone, or remove model.weights")
            if not self.pretrained:
                raise ValueError(f"weights {self.weights!r} is set but model.pretrained is false; "
                                 "set model.pretrained=true to start from it")
            if not Path(self.weights).expanduser().is_file():
                raise ValueError(f"weights: no file at {self.weights!r}; expected a state dict (.pt / .pth) of "
                                 f"{self.backbone}")
        return self

    @property
    def input_shape(self) -> tuple[int, int]:
        """(channels, size) of the images the backbone takes (grayscale for lenet, RGB otherwise)."""
        return INPUT_CHANNELS[self.backbone], self.image_size


class AffineConfig(_Strict):
    degrees: float = Field(15.0, ge=0, le=180)
    """Random rotation ±degrees."""
    translate: float = Field(0.1, ge=0, le=1)
    """Random shift ±this fraction of the image size."""
    scale: tuple[float, float] = (0.9, 1.1)
    """Zoom range [low, high] (< 1 shrinks)."""

    @field_validator("scale")
    @classmethod
    def _ordered(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"expected [low, high] with 0 < low <= high, got {list(scale)}")
        return scale


class PretrainConfig(_Strict):
    strategy: Literal["auto", "feature_extraction", "fine_tune"] = "auto"
    """`auto`: `feature_extraction` for a backbone with ImageNet weights (`model.pretrained`), else `fine_tune`."""
    epochs: int = Field(10, ge=1)
    """Epochs over the source training split."""
    lr: float = Field(0.01, gt=0)
    """SGD learning rate."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum."""
    weight_decay: float = Field(5e-4, ge=0)
    """L2 penalty."""
    batch_size: int = Field(64, ge=1)
    """Images per step."""
    augment: bool = True
    """Random affine augmentation (±15°, ±10 % shift, zoom in `augment_scale`) per image."""
    augment_scale: tuple[float, float] = (0.9, 1.1)
    """Random-affine zoom range (< 1 shrinks the image)."""


class TrainConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    """Images per step (source and target batches alike)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum."""
    augment: bool = True
    """Random affine augmentation of source and target batches."""
    augment_scale: tuple[float, float] = (0.9, 1.1)
    """Zoom range of that augmentation (< 1 shrinks)."""
    target_augment: AffineConfig | None = None
    """The target batch's weak view when `augment` is on (what pseudo-labels, SHOT and alignment read): its own
    affine ranges, or null for the source's."""
    optimizer: Optimizer = "sgd"
    """`sgd` or `adamw`."""
    nesterov: bool = False
    """Nesterov momentum (sgd only)."""
    lr_mult: float = Field(1.0, ge=0)
    """Discriminative learning rate: backbone lr = head lr × lr_mult."""
    schedule: Schedule = "constant"
    """Per-step learning-rate schedule after warm-up: `constant`, `cosine` or `onecycle`."""
    warmup_epochs: float = Field(0.0, ge=0)
    """Linear learning-rate warm-up, in epochs (fractions allowed)."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Cross-entropy label smoothing ε."""
    clip_grad_norm: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this, or null."""
    patience: int | None = Field(None, ge=1)
    """Early stopping: epochs without a better objective, or null."""
    unfreeze: int = Field(1, ge=0)
    """Strategy `partial`: how many of the last trunk blocks train."""
    ema_decay: float | None = Field(None, gt=0, lt=1)
    """Evaluate, select and register the exponential moving average of the weights with this decay d per step,
    or null for the raw weights. It spans about 1/(1 − d) steps once the warm-up min(d, (1 + t)/(10 + t)) reaches
    d (0.99: after ~900 steps); shorter runs average about their last 11 % of steps."""


class FixMatchConfig(_Strict):
    threshold: float = Field(0.95, gt=0, le=1)
    """τ: a target pseudo-label counts when the weak view's confidence reaches it."""
    weight: float = Field(1.0, ge=0)
    """μ: weight of the strong view's pseudo-label loss (ramped by `adaptation.schedule`)."""


class ShotConfig(_Strict):
    im_weight: float = Field(1.0, ge=0)
    """Information maximisation (entropy − diversity of the predictions)."""
    pseudo_label_weight: float = Field(0.1, ge=0)
    """β: cross-entropy with the clustering pseudo-labels, refreshed every epoch. 0.1 is SHOT's digit setting
    (tim-learn/SHOT README, `cls_par 0.1`; 0.3 is its Office setting)."""


class AdaptationConfig(_Strict):
    method: Method = "none"
    """`none`, one of `dan dann cdan coral reweight fixmatch shot`, or a composition such as `[dann, fixmatch]` (at
    most one alignment loss plus self-training); `search.method` overrides it."""
    schedule: Literal["ramp", "constant"] = "ramp"
    """`ramp`: λ_p = λ·(2/(1+exp(−10p)) − 1) over training progress p (DANN paper); or `constant`."""
    entropy_weight: float = Field(0.0, ge=0)
    """Target entropy minimisation weight (ramped like λ); 0 turns it off."""
    max_importance_weight: float = Field(10.0, gt=1)
    """reweight: clip w = (p(target|x)/p(source|x))^power at this before normalising."""
    importance_power: float = Field(1.0, gt=0, le=1)
    """reweight: a power in (0, 1]; < 1 flattens the weights."""
    hidden: int = Field(256, ge=1)
    """Width of the domain classifier (dann, cdan, reweight)."""
    source_free: bool = False
    """Self-training only (shot, fixmatch): adapt without reading any source image."""
    fixmatch: FixMatchConfig = FixMatchConfig()
    """FixMatch-style self-training."""
    shot: ShotConfig = ShotConfig()
    """SHOT-style information maximisation."""


class TrackingConfig(_Strict):
    uri: str = "sqlite:///mlflow.db"
    """MLflow tracking and registry store; `MLFLOW_TRACKING_URI` overrides it."""


class RegistryConfig(_Strict):
    model_name: str = Field(min_length=1)
    """The registered model; aliases `challenger` (newest) and `champion` (promoted)."""
    min_improvement: float = Field(0.0, ge=0.0, le=1.0)
    """The champion moves only if the gate's score beats it by more than this."""
    min_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    """Optional floor: a challenger below this target test accuracy is never promoted (accuracy gate only)."""
    gate: Gate = GATE_ACCURACY
    """Promotion basis: `target_test_acc`, `manual` (never automatic) or a label-free validator (`im snd bnm dev
    class_ami`) on the same unlabelled target images."""
    incomplete_grace_s: float = Field(600.0, ge=0.0)
    """A version left incomplete (its process was killed) this long is removed by the next run."""
