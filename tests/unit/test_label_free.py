"""A label-free objective never reads a target label: scrambling every target label the config keeps
(validation and test) changes nothing that tuning and selection see, only the oracle's numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from torchtransfer.config import DataConfig
from torchtransfer.data.datasets import Domain
from torchtransfer.data.splits import build_pair
from torchtransfer.models import build_model
from torchtransfer.train.plan import TrainPlan
from torchtransfer.train.recipe import fine_tune_with


def _pair(val: int):
    cfg = DataConfig.model_validate({"source": {"name": "mnist", "train": 300, "val": 100, "test": 50},
                                     "target": {"name": "digits", "train": 200, "val": val, "test": 100,
                                                "train_labelled": 0.0}})
    return build_pair(cfg, seed=0)


def _scrambled(domain: Domain) -> Domain:
    perm = torch.randperm(len(domain.y), generator=torch.Generator().manual_seed(123))
    return Domain(domain.name, domain.x, (domain.y[perm] + 3) % 10)


def _fit(pair, objective: str):
    plan = TrainPlan(epochs=2, adaptation="dann", seed=0, device="cpu", batch_size=64)
    return fine_tune_with(build_model("lenet", 10, 0), pair, plan, objective=objective)


@pytest.mark.parametrize("val", [0, 40])
@pytest.mark.slow
def test_label_free_selection_is_blind_to_target_labels(val):
    pair = _pair(val)
    assert bool((pair.target_train.y == -1).all())  # hidden labels never even reach the prepared pair
    tampered = replace(pair, target_val=_scrambled(pair.target_val) if val else pair.target_val,
                       target_test=_scrambled(pair.target_test))
    model_a, a = _fit(pair, "im")
    model_b, b = _fit(tampered, "im")
    assert [s.score for s in a.history] == [s.score for s in b.history]
    assert [s.metrics.get("validation/snd") for s in a.history] == [s.metrics.get("validation/snd")
                                                                      for s in b.history]
    assert a.best_epoch == b.best_epoch
    weights = zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True)
    assert all(torch.equal(p, q) for p, q in weights)
    if val:  # the oracle is logged (and differs), but was not used
        assert [s.val_acc for s in a.history] != [s.val_acc for s in b.history]
    else:
        assert all(s.val_acc is None for s in a.history)


@pytest.mark.slow
def test_the_labelled_objective_does_read_validation_labels():
    """The control: with target_val_acc the same scrambling changes the scores (so the test above can fail)."""
    pair = _pair(40)
    tampered = replace(pair, target_val=_scrambled(pair.target_val))
    _, a = _fit(pair, "target_val_acc")
    _, b = _fit(tampered, "target_val_acc")
    assert [s.score for s in a.history] != [s.score for s in b.history]
