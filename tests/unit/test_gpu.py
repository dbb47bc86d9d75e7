"""The CUDA path of fitting (AMP autocast + GradScaler, channels_last, pinned batches) on real digits.

Skipped without CUDA (tests/unit/conftest.py); CPU runs of the same code are covered by test_training.py."""

from __future__ import annotations

import math

import pytest
import torch

from torchtransfer import models, transfer_learner
from torchtransfer.data.datasets import digits
from torchtransfer.train.adaptation import AdaptationSpec

pytestmark = pytest.mark.gpu


def _fit(device: str):
    data = digits()
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    train, val, target = data.subset(index[:1000]), data.subset(index[1000:1400]), data.subset(index[1400:])
    model = models.build_model("lenet", 10, seed=0)
    learner = transfer_learner(model, lr=0.05, momentum=0.9, device=device)
    result = learner.fit(train, epochs=4, val_data=val, target=target, adaptation=AdaptationSpec("dan"),
                         batch_size=64, seed=0)
    return learner, model, result, val


def _check(device: str) -> None:
    learner, model, result, val = _fit(device)
    assert learner.device.type == "cuda" and all(p.device.type == "cuda" for p in model.parameters())
    convs = [p for p in model.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    losses = [h.train_loss for h in result.history]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < 0.7 * losses[0], losses
    assert all(torch.isfinite(p).all() for p in model.parameters())  # GradScaler skipped no bad step into them
    metrics = learner.evaluate(val)
    assert math.isfinite(metrics["acc"]) and metrics["acc"] > 0.5 and result.best_val_acc > 0.5, metrics


def test_a_short_cuda_fit_on_digits_learns_in_channels_last_with_finite_results():
    _check("cuda")
    assert torch.cuda.max_memory_allocated() > 0
