"""A tuning worker: joins the experiment's Optuna study by its storage URL and runs N more trials.

Started on any machine that reaches the same Optuna storage, MLflow tracking server and data caches
(``torchtransfer tune-worker -c conf/default.yaml --set tuning.storage=postgresql://... --trials 4``). It
resolves the study exactly as the flow does: same data and source model (content-keyed caches), same
shift-steered search space, hence the same study name. Its trials are children of a ``tune-worker`` parent
run and carry the worker's identity (tag ``torchtransfer.worker``, Optuna user attribute ``worker``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger

from torchtransfer.config import ExperimentConfig
from torchtransfer.train.recipe import FineTuning, SourceTraining
from torchtransfer.tune import study as studies
from torchtransfer_flows.transfer import parent_run
from torchtransfer_tasks.data import prepared_data
from torchtransfer_tasks.preflight import preflight
from torchtransfer_tasks.shift import analyze_shift, steer_search
from torchtransfer_tasks.tracking import log_params, log_tags
from torchtransfer_tasks.train import source_model
from torchtransfer_tasks.tune import open_study, run_trials, study_spec, worker_id


@dataclass(frozen=True)
class WorkerReport:
    worker: str
    run_id: str
    study_name: str
    n_trials_run: int
    counts: dict[str, int]


@flow(name="tune_worker")
def tune_worker(cfg: ExperimentConfig, n_trials: int, sampler_offset: int = 1000) -> WorkerReport:
    """Data → source model → shift steering (as the flow) → open the study → run ``n_trials`` trials.

    ``sampler_offset`` shifts this worker's sampler seed away from the flow's own workers (0, 1, ...)."""
    scan = preflight(cfg.data, cfg.model, cfg.tuning.storage, cfg.tracking.uri, cfg.cache_path)
    cfg, cache = cfg.with_classes(scan.classes), cfg.cache_path
    fine_tuning = FineTuning(cfg.train, cfg.adaptation, cfg.seed, cfg.device, cfg.tuning.objective)
    with parent_run(cfg) as run:
        log_tags(run, {"torchtransfer.role": "tune-worker", "torchtransfer.worker": worker_id()})
        log_params(run, {"seed.sampler.worker": cfg.seed + sampler_offset})
        data = prepared_data(cfg.data, cfg.seed, cache, run, scan, cfg.model.input_shape)
        source = source_model(SourceTraining(cfg.model, cfg.pretrain, cfg.seed, cfg.device), data, cache, run)
        space = steer_search(cfg.search, cfg.shift, analyze_shift(data, source, cfg.shift, cfg.seed, run), run)
        study = study_spec(cfg.experiment, cfg.tuning, space, fine_tuning, source, data.fingerprint)
        open_study(study, cfg.tuning.n_trials, run, space)
        ran = run_trials(study, space, fine_tuning, cfg.tuning, data, source, run, n_trials, sampler_offset)
    counts = studies.counts(study.open())
    get_run_logger().info("worker %s ran %d trials of %s; study now %s", worker_id(), ran, study.name, counts)
    return WorkerReport(worker_id(), run.run_id, study.name, ran, counts)
