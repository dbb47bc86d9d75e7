"""The weight average (``train.ema_decay``): its arithmetic, and that ``fit`` evaluates and returns it while the
raw weights train."""

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from torchtransfer import models, transfer_learner
from torchtransfer.train.averaging import WeightAverage
from torchtransfer.train.plan import TrainPlan

from .test_training import _domain


def test_the_average_follows_the_formula_with_its_warm_up():
    model = nn.Linear(2, 1)
    avg = WeightAverage(model, decay=0.9)
    expected = model.weight.detach().clone()
    for t, value in enumerate([1.0, -2.0, 3.0, 0.5] * 5, start=1):
        model.weight.data.fill_(value)
        avg.update(model)
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * value
    assert torch.allclose(avg.state["weight"], expected)


def test_integer_buffers_are_copied_not_averaged():
    model = nn.BatchNorm1d(3)
    avg = WeightAverage(model, decay=0.5)
    model.num_batches_tracked.fill_(7)
    avg.update(model)
    assert int(avg.state["num_batches_tracked"]) == 7


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        TrainPlan(epochs=1, ema_decay=decay)


def test_fit_returns_the_average_of_the_raw_iterates():
    """Two runs, same seed: without averaging the model ends on the raw iterate; with it, the raw iterates
    are the same (training does not see the average) and the returned model is their average."""
    data = _domain(64, 0)

    def run(decay):
        model = models.build_model("lenet", 10, seed=0)
        seen = []
        learner = transfer_learner(model, lr=0.05, device="cpu")
        learner.fit(data, epochs=3, batch_size=16, seed=1, ema_decay=decay,
                    on_epoch=lambda s: seen.append(s.train_loss))
        return model.state_dict(), seen

    raw, raw_losses = run(None)
    averaged, avg_losses = run(0.9)
    assert avg_losses == raw_losses  # the same training trajectory
    assert not torch.allclose(averaged["head.weight"], raw["head.weight"])
    replay = WeightAverage(models.build_model("lenet", 10, seed=0), 0.9)  # rebuild the average step by step
    model = models.build_model("lenet", 10, seed=0)
    learner = transfer_learner(model, lr=0.05, device="cpu")
    plan = TrainPlan(epochs=3, batch_size=16, seed=1, optim=learner.optim)
    steps = []

    def after_step(optimizer, args, kwargs):
        replay.update(model)
        steps.append(1)

    hook = register_optimizer_step_post_hook(after_step)
    try:
        learner.fit(data, plan=plan)
    finally:
        hook.remove()
    assert len(steps) == 12
    assert all(torch.allclose(averaged[k], replay.state[k], atol=1e-6) for k in averaged)


@pytest.mark.parametrize(("decay", "kept"), [(None, 1), (0.9, 3)])
def test_a_tied_objective_keeps_the_later_epoch_only_with_the_average(decay, kept):
    """A selector scoring every epoch alike: the raw weights keep the first epoch (as always); the average keeps
    the last, which averages the most steps."""
    learner = transfer_learner(models.build_model("lenet", 10, seed=0), lr=0.05, device="cpu")
    result = learner.fit(_domain(32, 0), epochs=3, batch_size=16, seed=1, ema_decay=decay,
                         selector=lambda _: (0.5, {}))
    assert result.best_epoch == kept
