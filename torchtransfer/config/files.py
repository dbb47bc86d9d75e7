"""Loading: YAML files deep-merged left to right (a domain's ``name``/``folder``/``manifest`` replace one
another), dotted ``KEY=VALUE`` overrides, then validation with errors naming the file and the field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from torchtransfer.config.data import DOMAIN_KINDS
from torchtransfer.config.experiment import ExperimentConfig
from torchtransfer.config.sections import ConfigError
from torchtransfer.trees import merge_choosing

DEFAULT_CONFIG = Path(__file__).parents[1] / "conf" / "default.yaml"  # package data; conf/default.yaml links to it


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
    return merge_choosing(tree, nested, DOMAIN_CHOICES)


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{origin}: {dotted}: {err['msg']}")
    return "\n".join(lines)


DOMAIN_CHOICES = {("data", side): DOMAIN_KINDS for side in ("source", "target")}


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
        tree = merge_choosing(tree, _read_yaml(Path(path)), DOMAIN_CHOICES)
    for override in overrides:
        tree = _apply_override(tree, override)
    origin = " + ".join(_label(p) for p in paths) + (" (with --set overrides)" if overrides else "")
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
