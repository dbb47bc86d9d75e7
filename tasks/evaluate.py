"""``evaluate_model``: tuned vs source-only accuracy on the held-out target test split."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.data import DataRef
from tasks.tracking import RunRef, log_metrics
from tasks.train import ModelRef
from torchtransfer.learner import transfer_learner


@task(cache_policy=NO_CACHE)
def evaluate_model(data: DataRef, model: ModelRef, source: ModelRef, device: str,
                   run: RunRef) -> dict[str, float]:
    """``test/target_acc``, ``test/target_macro_f1``, ``test/source_acc``, ``baseline/target_acc``,
    ``test/gain`` (= target_acc − baseline)."""
    pair = data.load()
    tuned = transfer_learner(model.load(), device=device)
    baseline = transfer_learner(source.load(), device=device)
    target = tuned.evaluate(pair.target_test)
    metrics = {
        "test/target_acc": target["acc"],
        "test/target_macro_f1": target["macro_f1"],
        "test/source_acc": tuned.evaluate(pair.source_test)["acc"],
        "baseline/target_acc": baseline.evaluate(pair.target_test)["acc"],
    }
    metrics["test/gain"] = metrics["test/target_acc"] - metrics["baseline/target_acc"]
    log_metrics(run, metrics)
    get_run_logger().info("target test acc %.4f (source-only %.4f, gain %+.4f)", metrics["test/target_acc"],
                          metrics["baseline/target_acc"], metrics["test/gain"])
    return metrics
