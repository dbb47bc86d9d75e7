"""Typed experiment configuration: YAML files deep-merged left to right, dotted overrides, strict validation.

Every model forbids unknown keys, so a misspelt key fails before anything runs. Errors name the file(s)
and the dotted path of the field, e.g. ``conf/x.yaml: train.lr: Input should be greater than 0``.
"""

from torchtransfer.config.data import DOMAIN_KINDS, DataConfig, Domain, DomainConfig
from torchtransfer.config.experiment import ExperimentConfig, RunRecord
from torchtransfer.config.files import DEFAULT_CONFIG, load_config, load_experiment
from torchtransfer.config.search import FirstTrial, FloatRange, IntRange, SearchConfig, TuningConfig, check_parallel
from torchtransfer.config.sections import (
    AdaptationConfig,
    Backbone,
    ConfigError,
    DriftConfig,
    Method,
    ModelConfig,
    Objective,
    Optimizer,
    PretrainConfig,
    Pruner,
    RegistryConfig,
    Schedule,
    ShiftConfig,
    Strategy,
    TrackingConfig,
    TrainConfig,
)
from torchtransfer.trees import deep_merge, section_hash

__all__ = ["DEFAULT_CONFIG", "DOMAIN_KINDS", "AdaptationConfig", "Backbone", "ConfigError", "DataConfig", "Domain",
           "DomainConfig", "DriftConfig", "ExperimentConfig", "FirstTrial", "FloatRange", "IntRange", "Method",
           "ModelConfig", "Objective", "Optimizer",
           "PretrainConfig", "Pruner", "RegistryConfig", "RunRecord", "Schedule", "SearchConfig", "ShiftConfig",
           "Strategy", "TrackingConfig", "TrainConfig", "TuningConfig", "check_parallel", "deep_merge",
           "load_config", "load_experiment", "section_hash"]
