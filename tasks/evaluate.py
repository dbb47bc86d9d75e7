"""``evaluate_model``: tuned vs source-only model on the held-out target test split, plus the source test split."""

from __future__ import annotations

import csv
import io
from tempfile import TemporaryDirectory

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer import evaluation as ev
from torchtransfer import keys
from torchtransfer.train.learner import transfer_learner
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, log_metrics, log_tags
from torchtransfer_tasks.train import ModelRef


@task(cache_policy=NO_CACHE)
def evaluate_model(data: DataRef, model: ModelRef, source: ModelRef, device: str,
                   run: RunRef) -> dict[str, float]:
    """``test/target_acc``, ``test/target_macro_f1``, ``test/target_ece``, ``test/source_acc``,
    ``baseline/target_acc``, ``baseline/target_ece``, ``test/gain`` (= target_acc − baseline) and
    ``test/source_cost`` (= source-only source acc − tuned source acc: what adaptation cost on the source);
    artifacts ``eval/per_class.csv`` and ``eval/confusion_matrix.png``; tag ``test.fingerprint``."""
    pair = data.load()
    test, k = pair.target_test, model.num_classes
    tuned = transfer_learner(model.load(), device=device)
    baseline = transfer_learner(source.load(), device=device)
    probs, base_probs = tuned.predict_proba(test.x), baseline.predict_proba(test.x)  # (N, K) each
    pred = probs.argmax(1)
    target = ev.classification_metrics(test.y, pred, k)
    metrics = {
        keys.TARGET_ACC: target["acc"],
        keys.TARGET_MACRO_F1: target["macro_f1"],
        keys.TARGET_ECE: ev.expected_calibration_error(probs, test.y),
        keys.SOURCE_ACC: tuned.evaluate(pair.source_test)["acc"],
        keys.BASELINE_TARGET_ACC: ev.classification_metrics(test.y, base_probs.argmax(1), k)["acc"],
        keys.BASELINE_TARGET_ECE: ev.expected_calibration_error(base_probs, test.y),
        keys.BASELINE_SOURCE_ACC: baseline.evaluate(pair.source_test)["acc"],
    }
    metrics[keys.GAIN] = metrics[keys.TARGET_ACC] - metrics[keys.BASELINE_TARGET_ACC]
    metrics[keys.SOURCE_COST] = metrics[keys.BASELINE_SOURCE_ACC] - metrics[keys.SOURCE_ACC]
    log_metrics(run, metrics)
    log_tags(run, {keys.TEST_FINGERPRINT: ev.split_fingerprint(test.x, test.y)})
    _log_artifacts(run, ev.per_class(test.y, pred, k), ev.confusion(test.y, pred, k))
    get_run_logger().info("target test acc %.4f (source-only %.4f, gain %+.4f), ECE %.4f; source acc %.4f "
                          "(cost %+.4f)", metrics[keys.TARGET_ACC], metrics[keys.BASELINE_TARGET_ACC],
                          metrics[keys.GAIN], metrics[keys.TARGET_ECE], metrics[keys.SOURCE_ACC],
                          metrics[keys.SOURCE_COST])
    return metrics


def _log_artifacts(run: RunRef, rows: list[dict], matrix) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    run.client.log_text(run.run_id, buffer.getvalue(), "eval/per_class.csv")
    fig = ev.confusion_figure(matrix, title=f"target test ({int(matrix.sum())} images)")
    with TemporaryDirectory() as tmp:
        path = f"{tmp}/confusion_matrix.png"
        fig.savefig(path)
        run.client.log_artifact(run.run_id, path, "eval")
