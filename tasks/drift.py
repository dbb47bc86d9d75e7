"""Drift tasks: ``check_drift`` (the cheap first look of a scheduled run: skip or retrain) and
``record_reference`` (what a new version was adapted to, stored with it). The decision itself is
``torchtransfer.registry.drift``; the references and the record over time are ``torchtransfer.registry.references``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment

from torchtransfer import registry
from torchtransfer.config import DriftConfig, ShiftConfig
from torchtransfer.registry import drift, references
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, ensure_experiment, log_metrics, log_tags
from torchtransfer_tasks.train import ModelRef

EVENT = "torchtransfer.drift.{decision}"  # torchtransfer.drift.retrain | torchtransfer.drift.skip


@dataclass(frozen=True)
class DriftCheck:
    """A check's verdict, the champion it compared with, its numbers (None: no test was needed), and whether
    this run goes on to retrain (``drift.retrain`` false leaves a retrain decision to an event trigger)."""

    verdict: drift.Verdict
    champion: str | None
    measured: drift.Measured | None
    reference_score: float | None
    go_on: bool

    @property
    def metrics(self) -> dict[str, float]:
        out = {"drift/retrain": float(self.verdict.retrain)}
        if self.measured is not None:
            m = self.measured
            out.update({"drift/p_value": m.p_value, "drift/mmd2": m.mmd2, "drift/score": m.score,
                        "drift/mean_confidence": m.mean_confidence})
        if self.reference_score is not None:
            out["drift/reference_score"] = self.reference_score
        return {k: v for k, v in out.items() if not math.isnan(v)}

    def rows(self) -> dict[str, str]:
        """The check as labelled strings (summary artifact, CLI table)."""
        rows = {"drift decision": self.verdict.decision, "drift reason": self.verdict.reason,
                "champion": f"v{self.champion}" if self.champion else "-"}
        if self.measured is not None:
            rows.update({"drift MMD² (champion features)": f"{self.measured.mmd2:.4f}",
                         "drift p-value": f"{self.measured.p_value:.4f}",
                         "champion score (new data)": f"{self.measured.score:.4f}",
                         "champion mean confidence": f"{self.measured.mean_confidence:.4f}"})
        if self.verdict.retrain and not self.go_on:
            rows["retrain"] = f"left to a trigger on {EVENT.format(decision=drift.RETRAIN)} (drift.retrain = false)"
        return rows


def _reference(client, name: str, champion) -> drift.Reference | None:
    """The champion's reference; None without one, or when it cannot be read (then the check says retrain)."""
    if champion is None:
        return None
    try:
        return references.load_reference(client, champion)
    except Exception as exc:  # a deleted artifact, a broken file: retraining makes a new one
        get_run_logger().warning("could not read the drift reference of %s v%s: %s: %s", name, champion.version,
                                 type(exc).__name__, exc)
        return None


def _measure(run: RunRef, name: str, champion, ref: drift.Reference, data: DataRef, validator: str,
             shift: ShiftConfig, seed: int) -> drift.Measured:
    with registry.tracking(run.tracking_uri):
        model = registry.from_registry(f"models:/{name}/{champion.version}")
    return drift.measure(model, data.load().target_train.x, ref, validator=validator, test=shift.test,
                         n_permutations=shift.n_permutations, max_samples=shift.max_samples, seed=seed)


@task(cache_policy=NO_CACHE)
def check_drift(data: DataRef, cfg: DriftConfig, shift: ShiftConfig, model_name: str, experiment: str, seed: int,
                run: RunRef) -> DriftCheck:
    """Compare the current target with the champion's reference (``torchtransfer.registry.drift``); tag and log
    the verdict on the run (``drift.decision``, ``drift.reason``, ``drift/*``), append it to the drift record in
    ``<experiment>-monitoring`` and emit the Prefect event ``torchtransfer.drift.<decision>``."""
    client = run.client
    champion = registry.by_alias(client, model_name, registry.CHAMPION)
    ref = _reference(client, model_name, champion)
    v = str(champion.version) if champion is not None else None
    verdict = drift.first_look(v, ref and ref.data_fingerprint, data.fingerprint)
    tested, measured, ref_score = verdict is None, None, None
    if ref is not None:  # rescored from the stored outputs, so drift.validator may differ from the reference's
        ref_score = drift.score(cfg.validator, ref.features, ref.probs, ref.seed)
    if tested:
        measured = _measure(run, model_name, champion, ref, data, cfg.validator, shift, seed)
        verdict = drift.judge(measured, ref_score, shift.alpha, cfg.max_score_drop, v)
    elif verdict.cause == "unchanged":  # the same images as the reference: MMD² 0 and p 1 by identity
        measured = drift.Measured(0.0, 1.0, ref_score, drift.mean_confidence(ref.probs))
    verdict = drift.forced(verdict, cfg.force)
    check = DriftCheck(verdict, v, measured, ref_score, go_on=verdict.retrain and cfg.retrain)
    log_tags(run, {"drift.decision": verdict.decision, "drift.reason": verdict.reason, "drift.cause": verdict.cause,
                   "drift.champion": v or "", "drift.tested": str(tested).lower()})
    log_metrics(run, check.metrics)
    key = deployment.name or experiment
    step = _record(run, cfg.monitoring_experiment or f"{experiment}-monitoring", key, check)
    _emit(check, key, experiment, model_name, run, step)
    get_run_logger().info("drift: %s: %s", verdict.decision, verdict.reason)
    return check


def _record(run: RunRef, monitoring: str, key: str, check: DriftCheck) -> int:
    """Append the check to the drift record of ``key`` (the deployment, else the experiment)."""
    client = run.client
    record = references.monitor_run(client, ensure_experiment(client, monitoring), key)
    client.set_tag(record, "drift.last_run", run.run_id)
    return references.record(client, record, check.metrics, datetime.now(UTC))


def _emit(check: DriftCheck, key: str, experiment: str, model_name: str, run: RunRef, step: int) -> None:
    from prefect.events import emit_event

    emit_event(event=EVENT.format(decision=check.verdict.decision),
               resource={"prefect.resource.id": f"torchtransfer.drift.{key}", "prefect.resource.name": key,
                         "torchtransfer.experiment": experiment, "torchtransfer.model": model_name},
               payload={"cause": check.verdict.cause, "reason": check.verdict.reason, "champion": check.champion,
                        "mlflow_run_id": run.run_id, "step": step, "metrics": check.metrics})


@task(cache_policy=NO_CACHE)
def record_reference(model: ModelRef, data: DataRef, cfg: DriftConfig, shift: ShiftConfig, seed: int,
                     run: RunRef) -> dict[str, str]:
    """The new model's drift reference on this target (``drift/reference.npz`` on the run); returns the version
    tags pointing to it, for ``register_model``."""
    ref = drift.reference(model.load(), data.load().target_train.x, data.fingerprint, cfg.validator,
                          shift.max_samples, seed)
    log_metrics(run, {"drift/reference_score": ref.score, "drift/reference_mean_confidence": ref.mean_confidence})
    return references.log_reference(run.client, run.run_id, ref)
