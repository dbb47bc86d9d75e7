"""Tuning tasks: open (or resume) the seeded, prunable Optuna study, run trials (each a nested MLflow run),
summarise the best. ``torchtransfer_flows.tuning`` wires them, with parallel workers on Dask when asked."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass

import optuna
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer import keys
from torchtransfer.config import SearchConfig, TuningConfig, section_hash
from torchtransfer.progress import stage, track
from torchtransfer.train import selection
from torchtransfer.train.recipe import FineTuning
from torchtransfer.tune import audit, search, validators
from torchtransfer.tune import study as studies
from torchtransfer.tune.search import HParams, suggest_hparams
from torchtransfer.tune.study import StudySpec
from torchtransfer_tasks.data import DataRef, code_hash
from torchtransfer_tasks.tracking import (
    RunRef,
    end,
    log_epoch,
    log_metrics,
    log_params,
    log_tags,
    run_name,
    start_child,
)
from torchtransfer_tasks.train import ModelRef, fit_hparams, training_code_hash


@dataclass(frozen=True)
class TuningResult:
    best: HParams
    best_value: float
    study_name: str
    n_trials_run: int
    counts: dict[str, int]


def study_spec(experiment: str, tuning: TuningConfig, space: SearchConfig, recipe: FineTuning, source: ModelRef,
               fingerprint: str) -> StudySpec:
    """The study of this experiment: its name is the experiment name + a hash of everything a trial's result
    depends on (not ``n_trials``): the search space, the fixed fine-tuning settings (``train``, ``adaptation``,
    the objective),
    the seed, the source model's content key, the data fingerprint and the code that runs a trial. A re-run
    with all of these unchanged continues the same study; a change in any starts another."""
    key = section_hash(space, recipe.train, recipe.adaptation, recipe.objective, recipe.seed, source.key,
                       fingerprint, training_code_hash(), code_hash(search, selection, validators))
    return StudySpec(f"{experiment}-{key[:10]}", tuning.storage, recipe.seed, tuning.pruner)


def worker_id() -> str:
    """Who runs a trial: ``TORCHTRANSFER_WORKER`` when set, else ``host-pid`` (each Dask worker differs)."""
    return os.environ.get("TORCHTRANSFER_WORKER") or f"{socket.gethostname()}-{os.getpid()}"


def _objective(space: SearchConfig, recipe: FineTuning, data: DataRef, source: ModelRef, parent: RunRef,
               name: str):
    logger = get_run_logger()
    parent_name = parent.client.get_run(parent.run_id).info.run_name or ""

    def objective(trial: optuna.Trial) -> float:
        hp = suggest_hparams(trial, space)
        trial.set_user_attr("worker", worker_id())
        child = start_child(parent, run_name(f"trial {trial.number}", parent_name), hp.as_params())
        log_tags(child, {"optuna.study_name": name, "optuna.trial_number": trial.number,
                         "torchtransfer.worker": worker_id()})

        def on_epoch(stats) -> None:
            log_epoch(child, stats)
            trial.report(stats.objective, stats.epoch)  # the pruner follows the objective
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {stats.epoch} ({recipe.objective} {stats.objective:.4f})")

        try:
            with stage(f"trial {trial.number}"):
                _, result = fit_hparams(recipe, source, data, hp, on_epoch=on_epoch)
        except optuna.TrialPruned as exc:
            log_tags(child, {"optuna.trial_state": "PRUNED", "optuna.pruned_reason": str(exc)})
            end(child, "KILLED")
            logger.info("trial %d pruned: %s", trial.number, exc)
            raise
        except Exception as exc:
            log_tags(child, {"optuna.trial_state": "FAIL", "optuna.fail_reason": repr(exc)[:500]})
            end(child, "FAILED")
            raise
        best = result.best
        trial.set_user_attr("validation", dict(best.metrics) if best else {})  # at the best epoch: the audit's input
        log_metrics(child, {"val/acc_best": result.best_val_acc, "val/objective_best": result.best_score})
        log_tags(child, {"optuna.trial_state": "COMPLETE"})
        end(child)
        logger.info("trial %d: %s %.4f (val/acc %s)  %s", trial.number, recipe.objective, result.best_score,
                    "-" if result.best_val_acc is None else f"{result.best_val_acc:.4f}", asdict(hp))
        return result.best_score

    return objective


def _fail_orphan_child_runs(run: RunRef, name: str, numbers: list[int]) -> None:
    """Child runs of trials whose process died (kill -9) are still RUNNING in MLflow: mark them FAILED."""
    for number in numbers:
        query = (f"tags.`optuna.study_name` = '{name}' and tags.`optuna.trial_number` = '{number}' "
                 "and attributes.status = 'RUNNING'")
        for orphan in run.client.search_runs([run.experiment_id], query):
            run.client.set_tag(orphan.info.run_id, "optuna.trial_state", "FAIL")
            run.client.set_tag(orphan.info.run_id, "optuna.fail_reason", "process died (no heartbeat)")
            run.client.set_terminated(orphan.info.run_id, "FAILED")


@task(cache_policy=NO_CACHE)
def open_study(study: StudySpec, n_trials: int, run: RunRef, space: SearchConfig | None = None) -> int:
    """Create or resume the study; a new one queues ``space.first`` as its first trial; fail trials of dead
    processes; return how many trials are still to run."""
    logger = get_run_logger()
    opened = study.open()
    first = search.first_params(space) if space is not None else {}
    if studies.enqueue_first(opened, first):
        logger.info("study %s: new, its first trial is search.first %s", study.name, first)
    stale = studies.fail_stale_trials(opened)
    if stale:
        logger.warning("study %s: trials %s had no heartbeat (process died); marked failed", study.name, stale)
        _fail_orphan_child_runs(run, study.name, stale)
    todo = studies.remaining(opened, n_trials)
    logger.info("study %s: %s, running %d more", study.name, studies.counts(opened), todo)
    return todo


@task(cache_policy=NO_CACHE)
def run_trials(study: StudySpec, space: SearchConfig, recipe: FineTuning, tuning: TuningConfig, data: DataRef,
               source: ModelRef, run: RunRef, n: int, worker: int = 0) -> int:
    """Run ``n`` trials of ``study`` in this process (one of possibly several workers).

    Worker ``i`` seeds its sampler with ``seed + i``: equally seeded samplers in several processes would
    propose the same first (random start-up) trials."""
    if tuning.n_workers > 1:  # share the cores between the workers
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // tuning.n_workers))
    opened = study.open(seed_offset=worker)
    ran: list[int] = []  # trials this worker ran: fewer than n when tuning.timeout stopped it
    with track(f"trials of {study.name}", total=n) as bar:

        def done(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            ran.append(trial.number)
            bar.advance()

        opened.optimize(_objective(space, recipe, data, source, run, study.name), n_trials=n,
                        timeout=tuning.timeout, catch=(FloatingPointError,), callbacks=[done])
    return len(ran)


@task(cache_policy=NO_CACHE)
def summarize_study(study: StudySpec, space: SearchConfig, n_run: int, run: RunRef) -> TuningResult:
    """Best trial → ``HParams``; counts, best value and params, and figures on the parent run."""
    opened = study.open()
    best = suggest_hparams(optuna.trial.FixedTrial(opened.best_trial.params), space)
    counts = studies.counts(opened)
    log_params(run, {"tuning.study_name": study.name, "tuning.sampler_seed": study.seed,
                     **{f"tuning.best.{k}": v for k, v in asdict(best).items()}})
    log_metrics(run, {keys.TUNING_BEST_VALUE: opened.best_value, "tuning/best_trial": opened.best_trial.number,
                      **{f"tuning/n_{k}": v for k, v in counts.items() if k != "running"}})
    for fig_name, fig in studies.figures(opened).items():
        run.client.log_figure(run.run_id, fig, f"tuning/{fig_name}.png")
    _log_audit(opened, run)
    return TuningResult(best, opened.best_value, study.name, n_run, counts)


def _log_audit(opened: optuna.Study, run: RunRef) -> None:
    """Where the oracle exists: ``validation/spearman/<name>``, ``validation/regret/<name>`` and
    ``validation/audit.png`` over the completed trials (``torchtransfer.tune.audit``)."""
    trials = [t.user_attrs.get("validation", {}) for t in opened.trials if t.state == optuna.trial.TrialState.COMPLETE]
    result = audit.audit(trials)
    if not result:
        return
    log_metrics(run, {f"validation/{what}/{name}": value for name, row in result.items()
                      for what, value in row.items() if value == value})  # NaN (constant scores) is not logged
    run.client.log_figure(run.run_id, audit.audit_figure(trials), "validation/audit.png")
