"""The config's vocabularies: every name a config key may take, in a module that imports nothing.

``torchtransfer.config`` builds its ``Literal`` types from these tuples, so loading and validating a config
(``torchtransfer --help``, a config error) never imports torch, scikit-learn or Optuna. The modules that
implement the names import them from here (``METHODS``, ``STRATEGIES``, ...) or key their tables by them
(``LOADERS``, ``BACKBONES``); ``tests/unit/test_names.py`` checks that each table and its tuple agree.
"""

from __future__ import annotations

DOMAINS = ("mnist", "usps", "digits")  # torchtransfer.data.datasets.LOADERS
BACKBONES = ("lenet", "resnet18", "resnet34", "resnet50", "efficientnet_lite0")  # torchtransfer.models.zoo
METHODS = ("none", "dan", "dann", "coral", "reweight")  # torchtransfer.train.adaptation
STRATEGIES = ("feature_extraction", "fine_tune", "partial", "gradual")  # torchtransfer.train.strategies
OPTIMIZERS = ("sgd", "adamw")  # torchtransfer.train.optim
SCHEDULES = ("constant", "cosine", "onecycle")
VALIDATORS = ("im", "snd", "bnm", "dev", "class_ami", "source_val_acc")  # torchtransfer.tune.validators
LABELLED_OBJECTIVE = "target_val_acc"
OBJECTIVES = (LABELLED_OBJECTIVE, *VALIDATORS)  # torchtransfer.train.selection
PRUNERS = ("median", "hyperband", "none")  # torchtransfer.tune.study
