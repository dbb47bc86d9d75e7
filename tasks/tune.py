"""``tune_hyperparameters``: a seeded, resumable Optuna study; each trial a nested MLflow run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import optuna
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.data import DataRef
from tasks.tracking import RunRef, end, log_epoch, log_metrics, log_params, log_tags, start_child
from tasks.train import ModelRef, fit_hparams
from torchtransfer.config import ExperimentConfig, section_hash
from torchtransfer.search import HParams, suggest_hparams

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


@dataclass(frozen=True)
class TuningResult:
    best: HParams
    best_value: float
    study_name: str
    n_trials_run: int


def study_name(cfg: ExperimentConfig, fingerprint: str) -> str:
    """Experiment name + a hash of everything a trial's result depends on (not ``n_trials``), so a re-run
    of the same experiment on the same data continues the same study."""
    key = section_hash(cfg.search, cfg.train, cfg.model, cfg.pretrain, cfg.seed, fingerprint)
    return f"{cfg.experiment}-{key[:10]}"


def _objective(cfg: ExperimentConfig, data: DataRef, source: ModelRef, parent: RunRef):
    logger = get_run_logger()

    def objective(trial: optuna.Trial) -> float:
        hp = suggest_hparams(trial, cfg.search)
        child = start_child(parent, f"trial-{trial.number}", hp.as_params())
        log_tags(child, {"optuna.trial_number": trial.number})
        try:
            _, result = fit_hparams(cfg, source, data, hp, on_epoch=lambda s: log_epoch(child, s))
        except Exception as exc:
            log_tags(child, {"optuna.trial_state": "FAIL", "optuna.fail_reason": repr(exc)[:500]})
            end(child, "FAILED")
            raise
        log_metrics(child, {"val/acc_best": result.best_val_acc})
        log_tags(child, {"optuna.trial_state": "COMPLETE"})
        end(child)
        logger.info("trial %d/%d: val/acc %.4f  %s", trial.number + 1, cfg.tuning.n_trials,
                    result.best_val_acc, asdict(hp))
        return result.best_val_acc

    return objective


@task(cache_policy=NO_CACHE)
def tune_hyperparameters(cfg: ExperimentConfig, data: DataRef, source: ModelRef, run: RunRef) -> TuningResult:
    """Run the study up to ``tuning.n_trials`` finished trials; objective = target validation accuracy."""
    logger = get_run_logger()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name(cfg, data.fingerprint)
    study = optuna.create_study(study_name=name, storage=cfg.tuning.storage, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=cfg.seed), load_if_exists=True)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    todo = max(cfg.tuning.n_trials - done, 0)
    logger.info("study %s: %d finished trials, running %d more", name, done, todo)
    if todo:
        study.optimize(_objective(cfg, data, source, run), n_trials=todo, timeout=cfg.tuning.timeout,
                       catch=(FloatingPointError,))
    best = suggest_hparams(optuna.trial.FixedTrial(study.best_trial.params), cfg.search)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    log_params(run, {"tuning.study_name": name, "tuning.sampler_seed": cfg.seed})
    log_metrics(run, {
        "tuning/best_value": study.best_value,
        "tuning/n_complete": states.count(optuna.trial.TrialState.COMPLETE),
        "tuning/n_failed": states.count(optuna.trial.TrialState.FAIL),
    })
    return TuningResult(best, study.best_value, name, todo)
