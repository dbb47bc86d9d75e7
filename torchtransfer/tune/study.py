"""Optuna studies: storage by URL, pruners, stale-trial recovery, counts and figures. No training here.

Storage URLs (``tuning.storage``):

| URL | storage | parallel workers |
| --- | --- | --- |
| ``sqlite:///optuna.db`` | RDB on SQLite, with heartbeats | one process only |
| ``postgresql://user:pw@host/db`` | RDB on PostgreSQL, with heartbeats | yes |
| ``journal:///path/study.log`` | Optuna's journal file storage | yes (shared file system) |
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from torchtransfer.locking import schema_lock
from torchtransfer.names import PRUNERS

log = logging.getLogger(__name__)
HEARTBEAT_S = 5  # a RUNNING trial whose heartbeat is older than GRACE_S belongs to a dead process
GRACE_S = 15
JOURNAL_PREFIX = "journal://"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def storage_problem(url: str, timeout_s: float = 5.0) -> str | None:
    """Why ``tuning.storage`` cannot be used (None: it can), found without creating anything: a database
    server must accept a connection within ``timeout_s``; a SQLite or journal file is made on first use."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    if url.startswith(JOURNAL_PREFIX) or is_sqlite(url):
        return None  # a file (and its folder) made on first use
    try:
        engine = create_engine(url, connect_args={"connect_timeout": int(max(timeout_s, 1))}, pool_pre_ping=False)
        with engine.connect():
            pass
        engine.dispose()
    except ArgumentError as exc:
        return f"tuning.storage: not a database URL ({exc})"
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"tuning.storage: cannot connect to {make_url(url).render_as_string(hide_password=True)}: {reason}"
    return None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats for database URLs, or a journal file storage for ``journal://PATH``."""
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(f"tuning.storage {url!r}: expected a database URL (sqlite:///optuna.db, "
                         "postgresql://...) or journal:///path/to/study.log")
    with warnings.catch_warnings(), schema_lock(url):  # heartbeats are "experimental"; we rely on them on purpose
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)




@dataclass(frozen=True)
class StudySpec:
    """A study's identity: its name, where it lives (an Optuna storage URL), its sampler seed and pruner."""

    name: str
    storage: str
    seed: int
    pruner: str = "none"

    def open(self, seed_offset: int = 0) -> optuna.Study:
        """Create or load the study; worker ``i`` samples with ``seed + i`` (see ``run_trials``)."""
        return load_or_create(self.name, self.storage, self.seed + seed_offset, self.pruner)


def make_pruner(name: str, min_epochs: int = 1) -> optuna.pruners.BasePruner:
    """``median`` (after 3 complete trials and ``min_epochs`` epochs), ``hyperband`` or ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=min_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; expected one of {PRUNERS}")


def load_or_create(name: str, url: str, seed: int, pruner: str = "none") -> optuna.Study:
    """The study ``name`` (created when missing), maximising, with a seeded TPE sampler."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize",
                               sampler=optuna.samplers.TPESampler(seed=seed), pruner=make_pruner(pruner),
                               load_if_exists=True)


def enqueue_first(study: optuna.Study, params: dict) -> bool:
    """Queue ``params`` (``search.first_params``) as the first trial of a study that has none; True if queued.
    ``skip_if_exists``: two workers opening the same new study queue it once."""
    if not params or study.trials:
        return False
    study.enqueue_trial(params, skip_if_exists=True)
    return True


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials whose process died (no heartbeat for ``GRACE_S``) as FAIL; return their numbers."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a no-op for storages without heartbeats (journal)
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted(before & failed)  # not those another live process finished meanwhile


def counts(study: optuna.Study) -> dict[str, int]:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {"complete": states.count(TrialState.COMPLETE), "pruned": states.count(TrialState.PRUNED),
            "failed": states.count(TrialState.FAIL), "running": states.count(TrialState.RUNNING)}


def remaining(study: optuna.Study, n_trials: int) -> int:
    """Trials still to run for the study to hold ``n_trials`` complete or pruned ones (failed ones retry)."""
    c = counts(study)
    return max(n_trials - c["complete"] - c["pruned"], 0)


def figures(study: optuna.Study) -> dict[str, object]:
    """Matplotlib figures: ``history``, ``intermediate`` and (with ≥ 2 complete trials) ``importance``."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as vis

    plots = {"history": vis.plot_optimization_history, "intermediate": vis.plot_intermediate_values}
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 1:
        plots["importance"] = vis.plot_param_importances
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, plot in plots.items():
            try:
                out[name] = plot(study).figure
            except (ValueError, RuntimeError) as exc:  # e.g. importances of a constant objective
                log.info("no %s figure: %s", name, exc)
    return out
