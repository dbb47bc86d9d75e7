"""``ExperimentConfig``: the whole experiment, its hash, and what the tracking stage records of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from torchtransfer.config.data import DataConfig
from torchtransfer.config.search import SearchConfig, TuningConfig
from torchtransfer.config.sections import (
    AdaptationConfig,
    DriftConfig,
    ModelConfig,
    PretrainConfig,
    RegistryConfig,
    ShiftConfig,
    TrackingConfig,
    TrainConfig,
    _Strict,
)
from torchtransfer.keys import GATE_ACCURACY
from torchtransfer.methods import SELF_TRAINING, has_alignment
from torchtransfer.names import AUTO_OBJECTIVE, BUILTIN_CLASSES, LABEL_FREE_DEFAULT, LABELLED_OBJECTIVE
from torchtransfer.trees import flatten, section_hash
from torchtransfer.uris import redact


class ExperimentConfig(_Strict):
    experiment: str = Field(min_length=1)
    """MLflow experiment name; also the prefix of the Optuna study name."""
    seed: int = Field(0, ge=0)
    """The one seed: splits, initial weights, batches, augmentation, the sampler, permutations."""
    cache_dir: str | None = None
    """Fetched archives, prepared splits, source models, checkpoints; null: `$TORCHTRANSFER_CACHE`, else
    `~/.cache/torchtransfer`."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` (CUDA when present, else CPU), `cpu` or `cuda`."""
    data: DataConfig
    """The two domains and the limits on images."""
    shift: ShiftConfig = ShiftConfig()
    """The MMD² domain-shift test."""
    model: ModelConfig = ModelConfig()
    """The backbone."""
    pretrain: PretrainConfig = PretrainConfig()
    """Source-only training of the backbone (cached by content key)."""
    train: TrainConfig = TrainConfig()
    """Fixed settings of fine-tuning (the tuned ones live under `search`)."""
    adaptation: AdaptationConfig = AdaptationConfig()
    """Domain adaptation during fine-tuning."""
    search: SearchConfig = SearchConfig()
    """The Optuna search space."""
    tuning: TuningConfig = TuningConfig()
    """The Optuna study."""
    tracking: TrackingConfig = TrackingConfig()
    """The MLflow store."""
    registry: RegistryConfig
    """The registered model and the champion gate."""
    drift: DriftConfig = DriftConfig()
    """Scheduled runs that watch the data: retrain only when the target drifted from the champion's."""

    @model_validator(mode="after")
    def _labels_for_the_objective(self) -> ExperimentConfig:
        if self.data.target.val == 0 and self.tuning.objective == LABELLED_OBJECTIVE:
            raise ValueError("data.target.val is 0 (no labelled target validation images) but tuning.objective "
                             f"is {LABELLED_OBJECTIVE!r}; pick a label-free objective, e.g. tuning.objective=im")
        if self.adaptation.source_free:
            reads_source = [m for m in self.search.method if has_alignment(m) or m == "none"]
            if reads_source:
                raise ValueError(f"adaptation.source_free is true but search.method has {reads_source}, which "
                                 f"read source images; use self-training only: {' | '.join(SELF_TRAINING)}")
        gate = self.registry.gate
        if self.data.target.test == 0 and gate == GATE_ACCURACY:
            raise ValueError(f"data.target.test is 0 (no labelled target test images) but registry.gate is {gate!r}; "
                             "pick registry.gate=manual or a label-free validator, e.g. registry.gate=im")
        if self.registry.min_accuracy is not None and gate != GATE_ACCURACY:
            raise ValueError(f"registry.min_accuracy is a floor on target test accuracy but registry.gate is "
                             f"{gate!r}; remove registry.min_accuracy or set registry.gate={GATE_ACCURACY}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _method_space(cls, data: Any) -> Any:
        """``search.method`` defaults to ``[adaptation.method]``: the configured method, not searched; and
        ``model.num_classes`` to 10 when both domains are built-in digit sets."""
        if isinstance(data, Mapping):
            data = _auto_objective(_builtin_classes(data))
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

    def with_classes(self, classes: Sequence[str]) -> ExperimentConfig:
        """This config with ``model.num_classes`` set from the data's classes when it was left unset."""
        if self.model.num_classes is not None:
            return self
        return self.model_copy(update={"model": self.model.model_copy(update={"num_classes": len(classes)})})

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
        experiment, the domain pair (a folder by its name), the adaptation methods the search may pick)."""
        source, target = (d.name or Path(d.where).name for d in (self.data.source, self.data.target))
        return f"{self.experiment} · {source}→{target} · {' | '.join(self.search.method)}"

    def sha256(self) -> str:
        """Hash of the resolved config (canonical JSON), used for tags, study names and cache keys."""
        return section_hash(self.model_dump(mode="json"))

    def flat(self) -> dict[str, Any]:
        """The resolved config flattened with dotted keys, e.g. ``{"train.batch_size": 64}``."""
        return flatten(self.model_dump(mode="json"))


def _auto_objective(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``tuning.objective: auto`` → ``target_val_acc`` with labelled target validation images, else the
    benchmarked label-free default (``names.LABEL_FREE_DEFAULT``)."""
    tuning, target = data.get("tuning") or {}, ((data.get("data") or {}).get("target") or {})
    if not (isinstance(tuning, Mapping) and tuning.get("objective") == AUTO_OBJECTIVE and isinstance(target, Mapping)):
        return data
    objective = LABEL_FREE_DEFAULT if target.get("val") == 0 else LABELLED_OBJECTIVE
    return {**data, "tuning": {**tuning, "objective": objective}}


def _builtin_classes(data: Mapping[str, Any]) -> Mapping[str, Any]:
    domains = [(data.get("data") or {}).get(side) for side in ("source", "target")]
    model = data.get("model") or {}
    builtin = all(isinstance(d, Mapping) and "name" in d and not ({"folder", "manifest"} & set(d)) for d in domains)
    if builtin and isinstance(model, Mapping) and model.get("num_classes") is None:
        return {**data, "model": {**model, "num_classes": len(BUILTIN_CLASSES)}}
    return data


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
