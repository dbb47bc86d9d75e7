"""The nightly decision (``torchtransfer.registry.drift``), pure: no Prefect, no MLflow, tiny hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from torchtransfer.config import ConfigError, load_experiment
from torchtransfer.registry.drift import RETRAIN, SKIP, Measured, Reference, first_look, forced, judge, score


def test_first_look_decides_without_a_test_only_when_it_can():
    assert first_look(None, None, "aa").decision == RETRAIN
    assert first_look("3", None, "aa").cause == "no_reference"
    unchanged = first_look("3", "aa", "aa")
    assert (unchanged.decision, unchanged.cause) == (SKIP, "unchanged") and "v3" in unchanged.reason
    assert first_look("3", "aa", "bb") is None  # changed data: the test decides


@pytest.mark.parametrize(("p", "new_score", "cause"), [
    (0.01, 0.50, "shift"),  # significant shift, score steady
    (0.30, 0.125, "score_drop"),  # no significant shift, the score fell by 0.375 > 0.25
    (0.01, 0.125, "shift_and_score"),
    (0.05, 0.25, "no_drift"),  # p = alpha is not significant; a drop of exactly the threshold is not past it
    (0.50, 0.75, "no_drift"),  # the score rose
])
def test_judge_retrains_on_a_significant_shift_or_a_score_drop_past_the_threshold(p, new_score, cause):
    verdict = judge(Measured(0.1, p, new_score, 0.8), reference_score=0.5, alpha=0.05, max_score_drop=0.25,
                    champion="2")
    assert verdict.cause == cause
    assert verdict.decision == (SKIP if cause == "no_drift" else RETRAIN)
    assert f"p = {p:.4g}" in verdict.reason and "v2" in verdict.reason


def test_force_turns_a_skip_into_a_retrain_and_keeps_the_checks_reason():
    skip = first_look("3", "aa", "aa")
    retrain = forced(skip, True)
    assert (retrain.decision, retrain.cause) == (RETRAIN, "forced") and skip.reason in retrain.reason
    assert forced(skip, False) is skip
    shifted = judge(Measured(0.1, 0.001, 0.5, 0.8), 0.5, 0.05, 0.1, "3")
    assert forced(shifted, True) is shifted  # already a retrain: its own cause stays


def test_reference_round_trips_through_its_npz_file(tmp_path):
    rng = np.random.default_rng(0)
    ref = Reference(rng.normal(size=(5, 3)).astype(np.float32), np.full((5, 2), 0.5, np.float32), "ab" * 32, "im",
                    0.25, 0.5, 7)
    back = Reference.load(ref.save(tmp_path / "reference.npz"))
    assert np.array_equal(back.features, ref.features) and np.array_equal(back.probs, ref.probs)
    assert (back.data_fingerprint, back.validator, back.score, back.mean_confidence, back.seed) == (
        ref.data_fingerprint, "im", 0.25, 0.5, 7)


def test_score_reads_target_outputs_only_and_names_the_allowed_validators():
    one_hot = np.eye(4, dtype=np.float32)  # confident and diverse: IM = log 4
    assert math.isclose(score("im", one_hot, one_hot, 0), math.log(4), rel_tol=1e-5)
    with pytest.raises(ValueError, match="im, snd, bnm, class_ami"):
        score("dev", one_hot, one_hot, 0)


def test_drift_config_is_off_by_default_and_strict():
    cfg = load_experiment()
    assert not cfg.drift.enabled and not cfg.drift.force and cfg.drift.validator == "im"
    assert load_experiment(overrides=["drift.enabled=true", "drift.force=true"]).drift.force
    with pytest.raises(ConfigError, match="drift.max_drop"):
        load_experiment(overrides=["drift.max_drop=0.2"])
    with pytest.raises(ConfigError, match="drift.validator"):
        load_experiment(overrides=["drift.validator=dev"])  # DEV reads source images: not a target-only score
