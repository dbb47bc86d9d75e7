import optuna
import pytest

from torchtransfer.config import check_parallel
from torchtransfer.tune import study as studies


def test_storage_by_url(tmp_path):
    rdb = studies.open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    assert isinstance(rdb, optuna.storages.RDBStorage) and rdb.get_heartbeat_interval() == studies.HEARTBEAT_S
    journal = studies.open_storage(f"journal://{tmp_path / 'j' / 'study.log'}")
    assert isinstance(journal, optuna.storages.JournalStorage)
    with pytest.raises(ValueError, match="expected a database URL"):
        studies.open_storage("optuna.db")


def test_parallel_workers_are_refused_on_sqlite_with_the_alternatives_named():
    check_parallel("sqlite:///o.db", 1)
    check_parallel("journal:///tmp/s.log", 4)
    check_parallel("postgresql://u:p@h/db", 4)
    with pytest.raises(ValueError, match=r"n_workers=2.*journal:///.*postgresql://"):
        check_parallel("sqlite:///o.db", 2)


def test_pruners():
    assert isinstance(studies.make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(studies.make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(studies.make_pruner("none"), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="unknown pruner"):
        studies.make_pruner("asha")


def test_resumed_study_counts_and_remaining(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = studies.load_or_create("s", url, seed=0, pruner="none")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = studies.load_or_create("s", url, seed=0)
    assert len(again.trials) == 3 and studies.remaining(again, 5) == 2 and studies.remaining(again, 2) == 0
    failing = again.ask()
    again.tell(failing, state=optuna.trial.TrialState.FAIL)
    assert studies.counts(again) == {"complete": 3, "pruned": 0, "failed": 1, "running": 0}
    assert studies.remaining(again, 5) == 2  # failed trials do not count towards n_trials


def test_same_seed_same_suggestions(tmp_path):
    def params(name):
        s = studies.load_or_create(name, f"journal://{tmp_path / name}.log", seed=3)
        s.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=12)
        return [t.params["x"] for t in s.trials]

    assert params("a") == params("b")


def test_figures(tmp_path):
    study = studies.load_or_create("f", f"sqlite:///{tmp_path / 'o.db'}", seed=0)

    def objective(trial):
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_int("y", 1, 3)
        for step in (1, 2):
            trial.report(x * step, step)
        return x + y

    study.optimize(objective, n_trials=4)
    figs = studies.figures(study)
    assert set(figs) == {"history", "intermediate", "importance"}
