"""The tuning stage as wiring: open (or resume) the study, run the missing trials, summarise.

``tuning.n_workers > 1`` runs that many trial workers at once as Prefect task runs on a Dask cluster (a
LocalCluster, or ``tuning.dask_address``), all on one study in a shared storage: the ``parallel_trials``
subflow.
"""

from __future__ import annotations

from prefect import flow

from torchtransfer.config import SearchConfig, TuningConfig
from torchtransfer.train.recipe import FineTuning
from torchtransfer.tune.study import StudySpec
from torchtransfer_tasks.data import DataRef
from torchtransfer_tasks.tracking import RunRef
from torchtransfer_tasks.train import ModelRef
from torchtransfer_tasks.tune import TuningResult, open_study, run_trials, summarize_study


@flow(name="parallel_trials", validate_parameters=False)  # internal references, validated where built
def parallel_trials(study: StudySpec, space: SearchConfig, recipe: FineTuning, tuning: TuningConfig,
                    data: DataRef, source: ModelRef, run: RunRef, todo: int) -> int:
    """``todo`` trials spread over ``tuning.n_workers`` concurrent task runs; returns how many ran."""
    workers = tuning.n_workers
    shares = [todo // workers + (i < todo % workers) for i in range(workers)]
    futures = [run_trials.submit(study, space, recipe, tuning, data, source, run, n, i)
               for i, n in enumerate(shares) if n]
    return sum(future.result() for future in futures)


def _dask_runner(tuning: TuningConfig):
    from prefect_dask import DaskTaskRunner

    if tuning.dask_address:
        return DaskTaskRunner(address=tuning.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": tuning.n_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


def tune_hyperparameters(study: StudySpec, space: SearchConfig, recipe: FineTuning, tuning: TuningConfig,
                         data: DataRef, source: ModelRef, run: RunRef) -> TuningResult:
    """Open (or resume) the study, run the missing trials (in parallel if configured), summarise."""
    todo = open_study(study, tuning.n_trials, run, space)
    ran = 0
    if todo and tuning.n_workers > 1:
        runner = parallel_trials.with_options(task_runner=_dask_runner(tuning))
        ran = runner(study, space, recipe, tuning, data, source, run, todo)
    elif todo:
        ran = run_trials(study, space, recipe, tuning, data, source, run, todo)
    return summarize_study(study, space, ran, run)
