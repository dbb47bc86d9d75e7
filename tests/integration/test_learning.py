"""The model learns: on a small real problem (500 MNIST → 500 USPS training images, a few epochs, one seed,
the flow's own recipes) the source model beats chance by a wide margin on both domains, and adaptation beats
source-only on the target, measured on held-out test images no training step reads."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import CONF
from torchtransfer.config import load_config
from torchtransfer.data.splits import build_pair
from torchtransfer.train.learner import TransferLearner
from torchtransfer.train.optim import OptimConfig
from torchtransfer.train.recipe import SourceTraining, fine_tune_plan, pretrain_on_source
from torchtransfer.tune.search import HParams

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = ["data.source.train=500", "data.source.val=100", "data.source.test=300",
         "data.target.train=500", "data.target.val=0", "data.target.test=500"]


def _fine_tuned(source, pair, cfg, method: str):
    """A copy of ``source`` fine-tuned by the flow's recipe (``fine_tune_plan``, the default ``train`` and
    ``adaptation`` sections) for 5 epochs with ``method``; the last epoch is kept, so no target label is read."""
    hp = HParams(lr=0.01, weight_decay=5e-4, epochs=5, strategy="fine_tune", adaptation_weight=1.0, method=method)
    plan = fine_tune_plan(cfg.train, cfg.adaptation, hp, cfg.seed, device="cpu")
    learner = TransferLearner(copy.deepcopy(source), plan.optim, device="cpu")
    learner.fit(pair.source_train, plan=plan, target=pair.target_train)  # target train labels are hidden (-1)
    return learner


def test_source_model_beats_chance_and_adaptation_beats_source_only(cache_dir):
    """Source model: LeNet pretrained by ``pretrain_on_source`` (20 epochs, batch 32, the default augmentation).
    Source-only control: the same fine-tuning run with method ``none``. Adapted: ``shot`` (information
    maximisation + clustering pseudo-labels), the cheap method that beats the control on every seed measured.

    Measured (this test's code, seeds 0–6; the test runs seed 0; chance is 0.10), as min / mean / seed 0:

    | target test acc unless said | min | mean | seed 0 |
    | --- | --- | --- | --- |
    | source model on source test | 0.920 | 0.941 | 0.930 |
    | source model | 0.748 | 0.820 | 0.748 |
    | source-only control (``none``) | 0.794 | 0.830 | 0.826 |
    | ``shot`` | 0.892 | 0.909 | 0.892 |
    | ``shot`` − source model | +0.058 | +0.089 | +0.144 |
    | ``shot`` − control | +0.024 | +0.078 | +0.066 |

    The flow's default ``dan`` is not asserted here: at this size it moved the target by −0.15 … +0.07 against
    the source model (mean +0.015): the target accuracy of any run here swings by up to 0.1 from one epoch to
    the next, more than DAN moves it.
    """
    cfg = load_config(CONF / "default.yaml", overrides=[
        *SIZES, "pretrain.epochs=20", "pretrain.batch_size=32", "train.batch_size=32", "seed=0",
        "adaptation.shot.pseudo_label_weight=0.3",  # the β the table above was measured with
        "train.ema_decay=null",  # and the raw weights (the last epoch's iterate, not the moving average)
        "train.target_augment=null",  # and the target's weak view drawn like the source's
        f"cache_dir={cache_dir}", "device=cpu"])
    pair = build_pair(cfg.data, cfg.seed, cfg.cache_path)
    model, _ = pretrain_on_source(SourceTraining(cfg.model, cfg.pretrain, cfg.seed, "cpu"), pair)
    source = TransferLearner(model, OptimConfig(), device="cpu")  # to evaluate it
    on_source, on_target = source.evaluate(pair.source_test)["acc"], source.evaluate(pair.target_test)["acc"]
    assert on_source > 0.85 and on_target > 0.65  # chance: 0.10

    control = _fine_tuned(model, pair, cfg, "none").evaluate(pair.target_test)["acc"]
    adapted = _fine_tuned(model, pair, cfg, "shot").evaluate(pair.target_test)["acc"]
    assert adapted > 0.85
    assert adapted > on_target + 0.04  # beats the source model (the flow's baseline/target_acc) ...
    assert adapted > control + 0.01  # ... and the same fine-tuning without adaptation
