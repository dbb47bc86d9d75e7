"""Feature-extraction trials on the same trunk and data run the trunk once: the features are kept across fits,
keyed by the trunk's weights and the data's content, and a changed trunk or changed data misses."""

from __future__ import annotations

import copy

import torch
from torch import nn

from torchtransfer import models, transfer_learner
from torchtransfer.data.datasets import Domain, mnist
from torchtransfer.train import feature_cache


def _trunk_calls(model: nn.Module) -> list[int]:
    """A counter of forward calls of the trunk's first convolution (a forward hook: it only observes)."""
    calls = [0]
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _fit(model: nn.Module, data: Domain) -> torch.Tensor:
    transfer_learner(model, lr=0.05, device="cpu").fit(data, epochs=2, strategy="feature_extraction",
                                                       batch_size=32, seed=1)
    return model.head.weight.detach().clone()


def test_a_second_trial_on_the_same_trunk_and_data_reuses_the_features():
    feature_cache._MEMO.clear()
    digits = mnist()
    data = Domain("mnist", digits.x[:200], digits.y[:200])
    source = models.build_model("lenet", 10, seed=0)

    first = copy.deepcopy(source)
    calls = _trunk_calls(first)
    head_first = _fit(first, data)
    assert calls[0] > 0  # the first trial runs the trunk

    second = copy.deepcopy(source)  # the next trial: the same source model, a fresh head training
    calls = _trunk_calls(second)
    head_second = _fit(second, data)
    assert calls[0] == 0  # ... and never runs the trunk
    assert torch.equal(head_first, head_second)  # exact: the same features, the same seeded head training

    changed = copy.deepcopy(source)
    with torch.no_grad():
        next(p for n, p in changed.named_parameters() if not n.startswith("head.")).add_(1e-3)
    calls = _trunk_calls(changed)
    _fit(changed, data)
    assert calls[0] > 0  # another trunk: computed anew

    other = copy.deepcopy(source)
    calls = _trunk_calls(other)
    _fit(other, Domain("mnist", digits.x[200:400], digits.y[200:400]))
    assert calls[0] > 0  # other images: computed anew
    assert len(feature_cache._MEMO) <= feature_cache.MEMO_ENTRIES
