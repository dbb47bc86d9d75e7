"""Tuning stage: a seeded, resumable, prunable Optuna study; each trial a nested MLflow run.

``tuning.n_workers > 1`` runs that many trial workers at once as Prefect task runs on a Dask cluster
(a LocalCluster, or ``tuning.dask_address``), all on one study in a shared storage.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass

import optuna
import torch
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from torchtransfer.config import ExperimentConfig, section_hash
from torchtransfer.progress import stage, track
from torchtransfer.tune import study as studies
from torchtransfer.tune.search import HParams, suggest_hparams
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef, end, log_epoch, log_metrics, log_params, log_tags, start_child
from torchtransfer_tasks.train import ModelRef, fit_hparams


@dataclass(frozen=True)
class TuningResult:
    best: HParams
    best_value: float
    study_name: str
    n_trials_run: int
    counts: dict[str, int]


def study_name(cfg: ExperimentConfig, fingerprint: str) -> str:
    """Experiment name + a hash of everything a trial's result depends on (not ``n_trials``), so a re-run
    of the same experiment on the same data continues the same study."""
    key = section_hash(cfg.search, cfg.train, cfg.model, cfg.pretrain, cfg.seed, fingerprint)
    return f"{cfg.experiment}-{key[:10]}"


def worker_id() -> str:
    """Who runs a trial: ``TORCHTRANSFER_WORKER`` when set, else ``host-pid`` (each Dask worker differs)."""
    return os.environ.get("TORCHTRANSFER_WORKER") or f"{socket.gethostname()}-{os.getpid()}"


def _objective(cfg: ExperimentConfig, data: DataRef, source: ModelRef, parent: RunRef, name: str):
    logger = get_run_logger()

    def objective(trial: optuna.Trial) -> float:
        hp = suggest_hparams(trial, cfg.search)
        trial.set_user_attr("worker", worker_id())
        child = start_child(parent, f"trial-{trial.number}", hp.as_params())
        log_tags(child, {"optuna.study_name": name, "optuna.trial_number": trial.number,
                         "torchtransfer.worker": worker_id()})

        def on_epoch(stats) -> None:
            log_epoch(child, stats)
            trial.report(stats.val_acc, stats.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {stats.epoch} (val/acc {stats.val_acc:.4f})")

        try:
            with stage(f"trial {trial.number}"):
                _, result = fit_hparams(cfg, source, data, hp, on_epoch=on_epoch)
        except optuna.TrialPruned as exc:
            log_tags(child, {"optuna.trial_state": "PRUNED", "optuna.pruned_reason": str(exc)})
            end(child, "KILLED")
            logger.info("trial %d pruned: %s", trial.number, exc)
            raise
        except Exception as exc:
            log_tags(child, {"optuna.trial_state": "FAIL", "optuna.fail_reason": repr(exc)[:500]})
            end(child, "FAILED")
            raise
        log_metrics(child, {"val/acc_best": result.best_val_acc})
        log_tags(child, {"optuna.trial_state": "COMPLETE"})
        end(child)
        logger.info("trial %d: val/acc %.4f  %s", trial.number, result.best_val_acc, asdict(hp))
        return result.best_val_acc

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
def open_study(cfg: ExperimentConfig, data: DataRef, run: RunRef) -> tuple[str, int]:
    """Create or resume the study; fail trials of dead processes; return (name, trials still to run)."""
    logger = get_run_logger()
    name = study_name(cfg, data.fingerprint)
    study = studies.load_or_create(name, cfg.tuning.storage, cfg.seed, cfg.tuning.pruner)
    stale = studies.fail_stale_trials(study)
    if stale:
        logger.warning("study %s: trials %s had no heartbeat (process died); marked failed", name, stale)
        _fail_orphan_child_runs(run, name, stale)
    todo = studies.remaining(study, cfg.tuning.n_trials)
    logger.info("study %s: %s, running %d more", name, studies.counts(study), todo)
    return name, todo


@task(cache_policy=NO_CACHE)
def run_trials(cfg: ExperimentConfig, data: DataRef, source: ModelRef, run: RunRef, name: str, n: int,
               worker: int = 0) -> int:
    """Run ``n`` trials of the study ``name`` in this process (one of possibly several workers).

    Worker ``i`` seeds its sampler with ``seed + i``: equally seeded samplers in several processes would
    propose the same first (random start-up) trials."""
    if cfg.tuning.n_workers > 1:  # share the cores between the workers
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.tuning.n_workers))
    study = studies.load_or_create(name, cfg.tuning.storage, cfg.seed + worker, cfg.tuning.pruner)
    ran: list[int] = []  # trials this worker ran: fewer than n when tuning.timeout stopped it
    with track(f"trials of {name}", total=n) as bar:

        def done(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            ran.append(trial.number)
            bar.advance()

        study.optimize(_objective(cfg, data, source, run, name), n_trials=n, timeout=cfg.tuning.timeout,
                       catch=(FloatingPointError,), callbacks=[done])
    return len(ran)


@flow(name="parallel_trials")
def parallel_trials(cfg: ExperimentConfig, data: DataRef, source: ModelRef, run: RunRef, name: str,
                    todo: int) -> int:
    """``todo`` trials spread over ``tuning.n_workers`` concurrent task runs; returns how many ran."""
    workers = cfg.tuning.n_workers
    shares = [todo // workers + (i < todo % workers) for i in range(workers)]
    futures = [run_trials.submit(cfg, data, source, run, name, n, i) for i, n in enumerate(shares) if n]
    return sum(future.result() for future in futures)


def _dask_runner(cfg: ExperimentConfig):
    from prefect_dask import DaskTaskRunner

    if cfg.tuning.dask_address:
        return DaskTaskRunner(address=cfg.tuning.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.tuning.n_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


@task(cache_policy=NO_CACHE)
def summarize_study(cfg: ExperimentConfig, name: str, n_run: int, run: RunRef) -> TuningResult:
    """Best trial → ``HParams``; counts, best value and params, and figures on the parent run."""
    study = studies.load_or_create(name, cfg.tuning.storage, cfg.seed, cfg.tuning.pruner)
    best = suggest_hparams(optuna.trial.FixedTrial(study.best_trial.params), cfg.search)
    counts = studies.counts(study)
    log_params(run, {"tuning.study_name": name, "tuning.sampler_seed": cfg.seed,
                     **{f"tuning.best.{k}": v for k, v in asdict(best).items()}})
    log_metrics(run, {"tuning/best_value": study.best_value, "tuning/best_trial": study.best_trial.number,
                      **{f"tuning/n_{k}": v for k, v in counts.items() if k != "running"}})
    for fig_name, fig in studies.figures(study).items():
        run.client.log_figure(run.run_id, fig, f"tuning/{fig_name}.png")
    return TuningResult(best, study.best_value, name, n_run, counts)


def tune_hyperparameters(cfg: ExperimentConfig, data: DataRef, source: ModelRef, run: RunRef) -> TuningResult:
    """Open (or resume) the study, run the missing trials (in parallel if configured), summarise."""
    name, todo = open_study(cfg, data, run)
    ran = 0
    if todo and cfg.tuning.n_workers > 1:
        ran = parallel_trials.with_options(task_runner=_dask_runner(cfg))(cfg, data, source, run, name, todo)
    elif todo:
        ran = run_trials(cfg, data, source, run, name, todo)
    return summarize_study(cfg, name, ran, run)
