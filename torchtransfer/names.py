"""The config's vocabularies: every name a config key may take, in a module that imports nothing.

``torchtransfer.config`` builds its ``Literal`` types from these tuples, so loading and validating a config
(``torchtransfer --help``, a config error) never imports torch, scikit-learn or Optuna. The modules that
implement the names import them from here (``METHODS``, ``STRATEGIES``, ...) or key their tables by them
(``LOADERS``, ``BACKBONES``); ``tests/unit/test_names.py`` checks that each table and its tuple agree.
"""

from __future__ import annotations

DOMAINS = ("mnist", "usps", "digits")  # torchtransfer.data.datasets.LOADERS
BACKBONES = ("lenet", "resnet18", "resnet34", "resnet50", "efficientnet_lite0")  # torchtransfer.models.zoo
# adaptation methods and their composition: torchtransfer.methods (imports nothing either)
INPUT_SIZES = {"lenet": 28, "resnet18": 32, "resnet34": 32, "resnet50": 32, "efficientnet_lite0": 224}
INPUT_CHANNELS = {"lenet": 1, "resnet18": 3, "resnet34": 3, "resnet50": 3, "efficientnet_lite0": 3}
STRATEGIES = ("feature_extraction", "fine_tune", "partial", "gradual")  # torchtransfer.train.strategies
OPTIMIZERS = ("sgd", "adamw")  # torchtransfer.train.optim
SCHEDULES = ("constant", "cosine", "onecycle")
VALIDATORS = ("im", "snd", "bnm", "dev", "class_ami", "source_val_acc")  # torchtransfer.tune.validators
TARGET_VALIDATORS = VALIDATORS[:-1]  # those that read target images (source accuracy says nothing of the target)
LABELLED_OBJECTIVE = "target_val_acc"
OBJECTIVES = (LABELLED_OBJECTIVE, *VALIDATORS)  # torchtransfer.train.selection
# tuning.objective "auto": the labelled objective when labelled target validation images exist, else this one —
# chosen by benchmarks/validators.py: see docs/tuning.md, "Which validator to trust"
LABEL_FREE_DEFAULT = "im"
AUTO_OBJECTIVE = "auto"
PRUNERS = ("median", "hyperband", "none")  # torchtransfer.tune.study
SHIFT_TESTS = ("median", "aggregated")  # torchtransfer.shift.aggregated
MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb warning threshold (Image.MAX_IMAGE_PIXELS)
BUILTIN_CLASSES = tuple(str(i) for i in range(10))  # mnist, usps, digits: the ten digits
