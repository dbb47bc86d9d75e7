"""The torchtransfer flow: prepare data → (drift check: skip, or go on) → (pretrain source) → measure shift → tune →
fine-tune → evaluate → register. Wiring only: every stage is a task in ``tasks/`` that calls the library; the cheap
check (``check_drift``, with ``drift.enabled``) and the retrain (``retrain``) are its two parts.

Run it with ``python -m torchtransfer_flows.transfer --config conf/default.yaml [--set tuning.n_trials=4]``.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from prefect import flow

from torchtransfer import keys
from torchtransfer.config import ExperimentConfig, load_experiment
from torchtransfer.train.recipe import FineTuning, SourceTraining
from torchtransfer.uris import redact
from torchtransfer_flows.tuning import tune_hyperparameters
from torchtransfer_tasks.data import DataRef, prepared_data
from torchtransfer_tasks.drift import DriftCheck, check_drift, record_reference
from torchtransfer_tasks.evaluate import evaluate_model
from torchtransfer_tasks.preflight import preflight
from torchtransfer_tasks.register import register_model
from torchtransfer_tasks.report import publish_summary
from torchtransfer_tasks.shift import analyze_shift, measure_adapted_shift, steer_search
from torchtransfer_tasks.tracking import RunRef, end_run, start_run
from torchtransfer_tasks.train import fine_tune, source_model
from torchtransfer_tasks.tune import study_spec


@dataclass(frozen=True)
class ExperimentSummary:
    run_id: str
    experiment: str
    tracking_uri: str
    mmd2: float
    p_value: float
    baseline_acc: float | None
    target_acc: float | None  # None: no labelled target test image (data.target.test = 0)
    gain: float | None
    model_name: str
    version: str
    aliases: tuple[str, ...]
    promotion: str
    study_name: str
    source_model_cached: bool
    drift: DriftCheck | None = None  # None: drift.enabled is false

    def rows(self) -> dict[str, str]:
        """The summary as labelled strings (CLI table, Prefect artifact)."""
        return {
            "MMD² (pixels)": f"{self.mmd2:.4f}",
            "p-value": f"{self.p_value:.4f}",
            "source-only target acc": _num(self.baseline_acc),
            "tuned target acc": _num(self.target_acc),
            "gain": _num(self.gain, "+.4f"),
            "registered": f"{self.model_name} v{self.version}",
            "aliases": ", ".join(self.aliases) or "-",
            "promotion": self.promotion,
            "Optuna study": self.study_name,
            "source model": "reused from cache" if self.source_model_cached else "trained in this run",
            **(self.drift.rows() if self.drift else {}),
            "MLflow run": f"{self.run_id} ({redact(self.tracking_uri)})",
        }


def _num(value: float | None, spec: str = ".4f") -> str:
    return "- (no labelled target test images)" if value is None else format(value, spec)


@contextmanager
def parent_run(cfg: ExperimentConfig):
    """The flow's MLflow parent run, marked FAILED if any stage raises."""
    run = start_run(cfg.record())
    try:
        yield run
    except BaseException:
        end_run(run, "FAILED")
        raise
    end_run(run, "FINISHED")


@dataclass(frozen=True)
class SkippedRun:
    """A run that ended after its drift check (``drift.decision`` skip, or retrain left to a trigger)."""

    run_id: str
    experiment: str
    tracking_uri: str
    drift: DriftCheck

    def rows(self) -> dict[str, str]:
        return {**self.drift.rows(), "MLflow run": f"{self.run_id} ({redact(self.tracking_uri)})"}


@flow(name="transfer_learning")
def transfer_learning(cfg: ExperimentConfig) -> ExperimentSummary | SkippedRun:
    """Prepare data → (drift check: skip, or go on) → measure shift → tune → fine-tune → evaluate → register."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    scan = preflight(cfg.data, cfg.model, cfg.tuning.storage, cfg.tracking.uri, cfg.cache_path)
    cfg = cfg.with_classes(scan.classes)
    plans = (SourceTraining(cfg.model, cfg.pretrain, cfg.seed, cfg.device),
             FineTuning(cfg.train, cfg.adaptation, cfg.seed, cfg.device, cfg.tuning.objective))
    with parent_run(cfg) as run:
        data = prepared_data(cfg.data, cfg.seed, cfg.cache_path, run, scan, cfg.model.input_shape)
        check = check_drift(data, cfg.drift, cfg.shift, cfg.registry.model_name, cfg.experiment, cfg.seed,
                            run) if cfg.drift.enabled else None
        if check is not None and not check.go_on:
            summary = SkippedRun(run.run_id, cfg.experiment, run.tracking_uri, check)
        else:
            summary = retrain(cfg, *plans, data, run, check)
    publish_summary(cfg.experiment, summary.rows(), run)
    return summary


def retrain(cfg: ExperimentConfig, source_training: SourceTraining, fine_tuning: FineTuning, data: DataRef,
            run: RunRef, check: DriftCheck | None) -> ExperimentSummary:
    """(Pretrain source) → measure shift → tune → fine-tune → evaluate → register with a drift reference."""
    cache = cfg.cache_path
    source = source_model(source_training, data, cache, run)
    shift = analyze_shift(data, source, cfg.shift, cfg.seed, run)
    space = steer_search(cfg.search, cfg.shift, shift, run)
    study = study_spec(cfg.experiment, cfg.tuning, space, fine_tuning, source, data.fingerprint)
    tuning = tune_hyperparameters(study, space, fine_tuning, cfg.tuning, data, source, run)
    model = fine_tune(fine_tuning, data, source, tuning.best, cache, run)
    measure_adapted_shift(data, model, cfg.shift, cfg.seed, run)
    metrics = evaluate_model(data, model, source, cfg.device, run, cfg.registry.gate, cfg.seed)
    reference = record_reference(model, data, cfg.drift, cfg.shift, cfg.seed, run)
    registered = register_model(model, metrics, data, cfg.registry, run, cfg.seed, reference)
    return _summary(cfg, run, shift, metrics, registered, tuning.study_name, source.trained_in_run, check)


def _summary(cfg, run: RunRef, shift, metrics, registered, study_name, source_run, check) -> ExperimentSummary:
    return ExperimentSummary(
        run_id=run.run_id, experiment=cfg.experiment, tracking_uri=run.tracking_uri, mmd2=shift.mmd2,
        p_value=shift.p_value, baseline_acc=metrics.get(keys.BASELINE_TARGET_ACC),
        target_acc=metrics.get(keys.TARGET_ACC), gain=metrics.get(keys.GAIN), model_name=registered.name,
        version=registered.version, aliases=registered.aliases, promotion=registered.decision.reason,
        study_name=study_name, source_model_cached=source_run != run.run_id, drift=check,
    )


def main(argv: list[str] | None = None) -> ExperimentSummary:
    parser = argparse.ArgumentParser(prog="python -m torchtransfer_flows.transfer", description=__doc__)
    parser.add_argument("--config", "-c", nargs="+", default=[],
                        help="YAML files, merged over the packaged default.yaml (none: the default experiment)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override")
    args = parser.parse_args(argv)
    return transfer_learning(load_experiment(*args.config, overrides=args.set))


if __name__ == "__main__":
    print(main())
