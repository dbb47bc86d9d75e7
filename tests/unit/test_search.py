import optuna

from tests.trials import ask_hparams
from torchtransfer.config import FloatRange, IntRange, SearchConfig
from torchtransfer.tune.search import HParams, suggest_hparams


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
