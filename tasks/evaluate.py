"""``evaluate_model``: tuned vs source-only model on the held-out target test split (when it has labelled images),
the source test split, and the label-free gate's score."""

from __future__ import annotations

import csv
import io
from tempfile import TemporaryDirectory

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer import evaluation as ev
from torchtransfer import keys
from torchtransfer.registry import gate as gates
from torchtransfer.report_html import DOMAIN_CMAPS
from torchtransfer.train.learner import transfer_learner
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, log_metrics, log_tags
from torchtransfer_tasks.train import ModelRef


@task(cache_policy=NO_CACHE)
def evaluate_model(data: DataRef, model: ModelRef, source: ModelRef, device: str, run: RunRef,
                   gate: str = keys.GATE_ACCURACY, seed: int = 0) -> dict[str, float]:
    """``test/source_acc``, ``baseline/source_acc``, ``test/source_cost`` (= source-only source acc − tuned
    source acc: what adaptation cost on the source); with labelled target test images also ``test/target_acc``,
    ``test/target_macro_f1``, ``test/target_ece``, ``baseline/target_acc``, ``baseline/target_ece``, ``test/gain``
    (= target_acc − baseline), artifacts ``eval/per_class.csv`` and ``eval/confusion_matrix.png`` and tag
    ``test.fingerprint``; with a label-free ``gate`` (``registry.gate``) ``gate/<gate>`` and ``baseline/gate/<gate>``:
    that validator's score on the unlabelled target images."""
    pair, logger = data.load(), get_run_logger()
    tuned, baseline = transfer_learner(model.load(), device=device), transfer_learner(source.load(), device=device)
    metrics = {keys.SOURCE_ACC: tuned.evaluate(pair.source_test)["acc"],
               keys.BASELINE_SOURCE_ACC: baseline.evaluate(pair.source_test)["acc"]}
    metrics[keys.SOURCE_COST] = metrics[keys.BASELINE_SOURCE_ACC] - metrics[keys.SOURCE_ACC]
    if len(pair.target_test):
        metrics |= _target_metrics(pair.target_test, tuned, baseline, model.num_classes, run)
        logger.info("target test acc %.4f (source-only %.4f, gain %+.4f), ECE %.4f", metrics[keys.TARGET_ACC],
                    metrics[keys.BASELINE_TARGET_ACC], metrics[keys.GAIN], metrics[keys.TARGET_ECE])
    if gate in gates.TARGET_VALIDATORS:
        key = keys.GATE_SCORE.format(gate=gate)
        metrics[key] = gates.label_free_score(tuned.model, pair, gate, seed, device)
        metrics[f"baseline/{key}"] = gates.label_free_score(baseline.model, pair, gate, seed, device)
        logger.info("label-free %s on the target images %.4f (source-only %.4f)", gate, metrics[key],
                    metrics[f"baseline/{key}"])
    log_metrics(run, metrics)
    logger.info("source acc %.4f (cost %+.4f)", metrics[keys.SOURCE_ACC], metrics[keys.SOURCE_COST])
    return metrics


def _target_metrics(test, tuned, baseline, k: int, run: RunRef) -> dict[str, float]:
    """Tuned vs source-only on the labelled target test split (read here and nowhere else)."""
    probs, base_probs = tuned.predict_proba(test.x), baseline.predict_proba(test.x)  # (N, K) each
    pred = probs.argmax(1)
    target = ev.classification_metrics(test.y, pred, k)
    metrics = {
        keys.TARGET_ACC: target["acc"],
        keys.TARGET_MACRO_F1: target["macro_f1"],
        keys.TARGET_ECE: ev.expected_calibration_error(probs, test.y),
        keys.BASELINE_TARGET_ACC: ev.classification_metrics(test.y, base_probs.argmax(1), k)["acc"],
        keys.BASELINE_TARGET_ECE: ev.expected_calibration_error(base_probs, test.y),
    }
    metrics[keys.GAIN] = metrics[keys.TARGET_ACC] - metrics[keys.BASELINE_TARGET_ACC]
    log_tags(run, {keys.TEST_FINGERPRINT: ev.split_fingerprint(test.x, test.y)})
    _log_artifacts(run, ev.per_class(test.y, pred, k), ev.confusion(test.y, pred, k))
    return metrics


def _log_artifacts(run: RunRef, rows: list[dict], matrix) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    run.client.log_text(run.run_id, buffer.getvalue(), "eval/per_class.csv")
    fig = ev.confusion_figure(matrix, title=f"target test ({int(matrix.sum())} images)", cmap=DOMAIN_CMAPS["target"])
    with TemporaryDirectory() as tmp:
        path = f"{tmp}/confusion_matrix.png"
        fig.savefig(path)
        run.client.log_artifact(run.run_id, path, "eval")
