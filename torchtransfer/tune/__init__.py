"""Tuning stage: the search space → frozen ``HParams`` (``search``) and the Optuna study (``study``: storage,
pruner, resume; imported on demand, it loads Optuna)."""

from torchtransfer.tune.search import HParams, steer, suggest_hparams

__all__ = ["HParams", "steer", "suggest_hparams"]
