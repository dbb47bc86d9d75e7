import optuna
import pytest

from tests.conftest import CONF
from tests.trials import ask_hparams
from torchtransfer.config import ConfigError, FloatRange, IntRange, SearchConfig, load_config
from torchtransfer.tune.search import HParams, first_params, suggest_hparams
from torchtransfer.tune.study import enqueue_first


def test_suggest_inside_the_space_with_a_real_trial():
    space = SearchConfig()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    trial = study.ask()
    hp = suggest_hparams(trial, space)
    assert space.lr.low <= hp.lr <= space.lr.high
    assert space.epochs.low <= hp.epochs <= space.epochs.high
    assert hp.strategy in space.strategy
    assert set(trial.params) == {"lr", "weight_decay", "epochs", "strategy"}  # method none: no weight asked


def test_the_adaptation_weight_is_conditional_on_the_method():
    space = SearchConfig(method=("none", "dan"))
    seen = {}
    for trial, hp in ask_hparams(space, optuna.samplers.TPESampler(seed=0), 12, value=lambda hp: hp.lr):
        seen[hp.method] = "adaptation_weight" in trial.params
        assert (hp.adaptation_weight == 0.0) == (hp.method == "none")
    assert seen == {"none": False, "dan": True}


def test_fixed_ranges_are_not_asked_and_fixed_trial_replays():
    space = SearchConfig(epochs=IntRange(low=2, high=2), strategy=("fine_tune",),
                         adaptation_weight=FloatRange(low=0.0, high=0.0))
    params = {"lr": 0.01, "weight_decay": 1e-4}
    hp = suggest_hparams(optuna.trial.FixedTrial(params), space)
    assert hp == HParams(lr=0.01, weight_decay=1e-4, epochs=2, strategy="fine_tune", adaptation_weight=0.0)
    assert hp.as_params()["hp.strategy"] == "fine_tune"


def test_a_new_study_tries_search_first_first_and_a_resumed_one_is_left_alone():
    space = load_config(CONF / "default.yaml").search
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    assert enqueue_first(study, first_params(space))
    trial = study.ask()
    hp = suggest_hparams(trial, space)
    assert (hp.lr, hp.weight_decay, hp.epochs, hp.strategy) == (0.02, 5e-4, 30, "fine_tune")
    assert hp.method == "fixmatch+shot"
    study.tell(trial, 0.9)
    assert not enqueue_first(study, first_params(space))  # the study has trials: nothing queued
    assert suggest_hparams(study.ask(), space).lr != 0.02  # sampled from here on


def test_search_first_is_clipped_into_the_space_and_checked_by_the_config():
    space = load_config(CONF / "default.yaml", overrides=["search.lr={low: 0.001, high: 0.01, log: true}",
                                                          "search.strategy=[feature_extraction]"]).search
    assert first_params(space) == {"lr": 0.01, "weight_decay": 5e-4, "epochs": 30}  # one strategy: not asked
    assert first_params(space.model_copy(update={"first": None})) == {}
    with pytest.raises(ConfigError, match="search.first.strategy"):
        load_config(CONF / "default.yaml", overrides=["search.first.strategy=fine_tuning"])
