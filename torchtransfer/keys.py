"""Every metric and tag key the flow writes and the registry, the CLI and ``reproduce`` read, defined once.

Metrics are namespaced with ``/`` (``test/target_acc``); a registered version carries the same numbers as tags
with ``.`` (``test.target_acc``, see ``as_tag``), since MLflow model versions have tags, not metrics.
"""

from __future__ import annotations

# evaluation (evaluate_model)
TARGET_ACC = "test/target_acc"
TARGET_MACRO_F1 = "test/target_macro_f1"
TARGET_ECE = "test/target_ece"
SOURCE_ACC = "test/source_acc"
GAIN = "test/gain"
SOURCE_COST = "test/source_cost"
BASELINE_TARGET_ACC = "baseline/target_acc"
BASELINE_TARGET_ECE = "baseline/target_ece"
BASELINE_SOURCE_ACC = "baseline/source_acc"
# the promotion gate (registry.gate): target test accuracy, manual, or a label-free validator's score
GATE_ACCURACY = "target_test_acc"
GATE_MANUAL = "manual"
GATE_SCORE = "gate/{gate}"  # the challenger's label-free score (``baseline/gate/...``: the source-only model's)
# shift and tuning
SHIFT_MMD2 = "shift/mmd2"
SHIFT_P_VALUE = "shift/p_value"
TUNING_BEST_VALUE = "tuning/best_value"
# tags on the parent run and on registered versions
DATA_FINGERPRINT = "data.fingerprint"
TEST_FINGERPRINT = "test.fingerprint"
CONFIG_SHA256 = "config.sha256"
MODEL_SHA256 = "model.sha256"


def as_tag(metric: str) -> str:
    """The version-tag name of a metric.

    Example:
        >>> as_tag(TARGET_ACC)
        'test.target_acc'
    """
    return metric.replace("/", ".")

# the MLflow experiment: the kind MLflow 3's UI type selector records ("model training", not "GenAI apps &
# agents"); the UI link's query that opens the training view (MLflow 3.17's UI follows this, not the tag)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
UI_TRAINING_VIEW = "workflowType=machine_learning"
