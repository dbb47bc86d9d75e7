"""The frozen TrainPlan and the one place that builds the flow's plans (``torchtransfer.train.recipe``)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
import torch

from tests.conftest import CONF
from torchtransfer import provenance
from torchtransfer.config import load_config
from torchtransfer.data.augment import Affine
from torchtransfer.train.plan import TrainPlan
from torchtransfer.train.recipe import FineTuning, SourceTraining, pretrain_strategy
from torchtransfer.tune.search import HParams


def _cfg(*overrides: str):
    return load_config(CONF / "default.yaml", overrides=list(overrides))


def test_a_plan_is_frozen_normalised_and_validated():
    plan = TrainPlan(epochs=2, adaptation="dann", augment=True)
    assert plan.adaptation.method == "dann" and isinstance(plan.augment, Affine)
    with pytest.raises(FrozenInstanceError):
        plan.epochs = 3
    assert plan.with_(epochs=3).epochs == 3 and plan.epochs == 2
    with pytest.raises(ValueError, match="epochs must be"):
        TrainPlan(epochs=0)
    with pytest.raises(ValueError, match="unknown strategy"):
        TrainPlan(epochs=1, strategy="freeze_all")
    with pytest.raises(ValueError, match="feature_cache needs"):
        TrainPlan(epochs=1, strategy="fine_tune", feature_cache=True)


def test_fine_tuning_plan_carries_every_setting_of_hparams_train_and_adaptation():
    cfg = _cfg("train.batch_size=32", "train.patience=3", "adaptation.entropy_weight=0.2", "seed=7")
    hp = HParams(lr=0.02, weight_decay=1e-4, epochs=4, strategy="partial", adaptation_weight=0.5, method="dann")
    plan = FineTuning(cfg.train, cfg.adaptation, cfg.seed, "cpu").plan(hp)
    assert (plan.epochs, plan.strategy, plan.batch_size, plan.patience, plan.seed, plan.device) == (
        4, "partial", 32, 3, 7, "cpu")
    assert (plan.optim.lr, plan.optim.weight_decay, plan.optim.momentum) == (0.02, 1e-4, cfg.train.momentum)
    assert (plan.adaptation.method, plan.adaptation.weight, plan.adaptation.entropy_weight) == ("dann", 0.5, 0.2)
    assert plan.augment.scale == tuple(cfg.train.augment_scale)


def test_pretrained_backbones_keep_their_imagenet_features_on_the_source_by_default():
    """HAS_PRETRAINED_WEIGHTS decides ``pretrain.strategy: auto``; an explicit strategy wins."""
    lenet, effnet = _cfg(), _cfg("model.backbone=efficientnet_lite0", "model.pretrained=true")
    assert pretrain_strategy(lenet.model, lenet.pretrain) == "fine_tune"
    assert pretrain_strategy(effnet.model, effnet.pretrain) == "feature_extraction"
    unpretrained = _cfg("model.backbone=efficientnet_lite0")
    assert pretrain_strategy(unpretrained.model, unpretrained.pretrain) == "fine_tune"
    forced = _cfg("model.backbone=efficientnet_lite0", "model.pretrained=true", "pretrain.strategy=fine_tune")
    assert SourceTraining(forced.model, forced.pretrain, 0).plan().strategy == "fine_tune"


def test_recorded_determinism_and_sampler_seeds_are_what_happened():
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        assert provenance.environment_tags("cpu")["env.deterministic"] == "false"
        torch.use_deterministic_algorithms(True, warn_only=True)
        assert provenance.environment_tags("cpu")["env.deterministic"] == "warn-only"
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    assert provenance.seed_params(3)["seed.sampler"] == 3
    assert provenance.seed_params(3, n_workers=3)["seed.sampler"] == "3,4,5"


def test_the_target_view_is_the_source_augmentation_unless_set():
    """``target_augment`` None inherits ``augment``; False is the raw target; an ``Affine`` is its own view."""
    own = Affine(degrees=5.0, translate=0.0, scale=(1.0, 1.0))
    hp = HParams(lr=0.02, weight_decay=5e-4, epochs=1, strategy="fine_tune", adaptation_weight=1.0)
    default = _cfg().train.target_augment
    assert TrainPlan(epochs=1, augment=True).target_augment == Affine()
    assert TrainPlan(epochs=1, augment=True, target_augment=False).target_augment is None
    assert TrainPlan(epochs=1, augment=False, target_augment=own).target_augment == own
    assert FineTuning(_cfg().train, _cfg().adaptation, 0, "cpu").plan(hp).target_augment == Affine(
        degrees=default.degrees, translate=default.translate, scale=tuple(default.scale))
    off = _cfg("train.augment=false")
    assert FineTuning(off.train, off.adaptation, 0, "cpu").plan(hp).target_augment is None
    inherited = _cfg("train.target_augment=null")
    assert FineTuning(inherited.train, inherited.adaptation, 0, "cpu").plan(hp).target_augment == Affine(
        scale=tuple(inherited.train.augment_scale))


def test_fit_draws_the_target_weak_view_from_target_augment_and_the_source_batch_as_before():
    """``TransferLearner._views`` (what every ``fit`` step calls): an identity target view leaves the target
    batch as it is while the source batch gets the same augmentation draw as with the inherited view."""
    from torchtransfer.train.learner import TransferLearner

    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    identity = Affine(degrees=0.0, translate=0.0, scale=(1.0, 1.0))
    views = {}
    for name, weak in (("inherited", None), ("identity", identity)):
        plan = TrainPlan(epochs=1, augment=Affine(scale=(0.7, 1.3)), target_augment=weak)
        views[name] = TransferLearner._views(x, x.clone(), plan, None, torch.Generator().manual_seed(1))
    assert torch.equal(views["inherited"][0], views["identity"][0]) and not torch.allclose(views["identity"][0], x)
    assert torch.allclose(views["identity"][1], x, atol=1e-5)
    assert not torch.allclose(views["inherited"][1], x, atol=1e-2)


@pytest.mark.parametrize(("override", "field"), [
    ("train.target_augment={scale: [1.2, 0.8]}", "train.target_augment.scale"),
    ("train.target_augment={degrees: 10, rotation: 3}", "train.target_augment.rotation"),
    ("train.target_augment.translate=2", "train.target_augment.translate"),
])
def test_a_bad_target_view_is_a_config_error_naming_the_field(override, field):
    from torchtransfer.config import ConfigError

    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _cfg(override)
