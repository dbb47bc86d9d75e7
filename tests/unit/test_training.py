import pytest
import torch
from torch import nn

from torchtransfer import models, transfer_learner
from torchtransfer.data.datasets import Domain
from torchtransfer.train import strategies
from torchtransfer.train.adaptation import AdaptationSpec
from torchtransfer.train.optim import OptimConfig, lr_factor


def _domain(n, seed, shift=0.0, size=28):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, size, size, generator=g) * 0.3
    for i, label in enumerate(y.tolist()):  # a class-specific bright bar makes the task learnable
        x[i, 0, 2 * label + 2: 2 * label + 5, 4: size - 4] = 1.0 - shift
    return Domain("toy", x, y)


def _lenet():
    return models.build_model("lenet", 10, seed=0)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _changed(before, model, prefix):
    after = model.state_dict()
    return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}


def test_loss_falls_when_overfitting_one_batch_of_16():
    data = _domain(16, 0)
    learner = transfer_learner(_lenet(), lr=0.05, momentum=0.9, device="cpu")
    result = learner.fit(data, epochs=30, batch_size=16, seed=0)
    losses = [h.train_loss for h in result.history]
    assert losses[-1] < 0.2 * losses[0]
    assert learner.evaluate(data)["acc"] == 1.0


def test_same_seed_same_weights_and_best_epoch_restored():
    def run():
        model = models.build_model("lenet", 10, seed=1)
        learner = transfer_learner(model, lr=0.02, device="cpu")
        res = learner.fit(_domain(64, 1), epochs=3, val_data=_domain(32, 2), target=_domain(48, 3, 0.3),
                          adaptation=AdaptationSpec("dann", entropy_weight=0.1), batch_size=16, augment=True, seed=5)
        return res, model.state_dict()

    (r1, w1), (r2, w2) = run(), run()
    assert r1 == r2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert r1.best_val_acc == max(h.val_acc for h in r1.history)


def test_feature_extraction_leaves_the_trunk_unchanged():
    model = _lenet()
    before = _snapshot(model)
    transfer_learner(model, lr=0.05, device="cpu").fit(_domain(32, 0), epochs=2, strategy="feature_extraction",
                                                       batch_size=16)
    assert _changed(before, model, "trunk") == set()
    assert _changed(before, model, "head") == {"head.weight", "head.bias"}


def test_partial_trains_only_the_last_k_blocks():
    model = _lenet()  # blocks: conv1 (trunk.0), conv2 (trunk.3), fc (trunk.7)
    before = _snapshot(model)
    transfer_learner(model, lr=0.05, device="cpu").fit(_domain(32, 0), epochs=2, strategy="partial", unfreeze=2,
                                                       batch_size=16)
    assert _changed(before, model, "trunk") == {"trunk.3.weight", "trunk.3.bias", "trunk.7.weight", "trunk.7.bias"}


def test_gradual_unfreezes_one_block_per_epoch():
    model = _lenet()
    before = _snapshot(model)
    learner = transfer_learner(model, lr=0.05, device="cpu")
    learner.fit(_domain(32, 0), epochs=1, strategy="gradual", batch_size=16)
    assert _changed(before, model, "trunk") == set()  # epoch 1: head only
    learner.fit(_domain(32, 0), epochs=2, strategy="gradual", batch_size=16)
    assert _changed(before, model, "trunk") == {"trunk.7.weight", "trunk.7.bias"}  # epoch 2: + the last block
    assert [strategies.n_trainable_blocks("gradual", 3, e) for e in (1, 2, 3, 4)] == [0, 1, 2, 3]


def test_frozen_blocks_keep_batchnorm_statistics():
    model = models.build_model("resnet18", 10, seed=0)
    before = _snapshot(model)
    rgb = Domain("toy", torch.rand(8, 3, 16, 16), torch.arange(8) % 10)
    transfer_learner(model, lr=0.01, device="cpu").fit(rgb, epochs=1, strategy="partial", unfreeze=1, batch_size=4)
    changed = _changed(before, model, "trunk")
    assert changed and all(k.startswith("trunk.4.") for k in changed)  # only layer4 (+ pool) trains
    assert not any(k.startswith("trunk.0.") for k in changed)  # stem BN running stats did not move
    assert any(k.startswith("trunk.4.") and "running_mean" in k for k in changed)  # layer4's BN did


def test_lr_groups_as_configured():
    model = _lenet()
    groups = strategies.param_groups(model, lr=0.1, lr_mult=0.25, extra=(nn.Linear(3, 1),))
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.025), ("head", 0.1)]
    assert len(groups[0]["params"]) == 6 and len(groups[1]["params"]) == 4
    before = _snapshot(model)  # lr_mult = 0: the backbone cannot move, the head does
    transfer_learner(model, lr=0.05, lr_mult=0.0, device="cpu").fit(_domain(32, 0), epochs=1, batch_size=16)
    assert _changed(before, model, "trunk") == set() and _changed(before, model, "head")


def test_early_stopping_stops_and_restores_the_best_epoch():
    learner = transfer_learner(_lenet(), lr=1e-12, momentum=0.0, device="cpu")  # val acc cannot improve
    result = learner.fit(_domain(32, 0), epochs=10, val_data=_domain(20, 1), batch_size=16, patience=2)
    assert [h.epoch for h in result.history] == [1, 2, 3]
    assert result.stopped_early and result.best_epoch == 1


def test_on_epoch_may_raise_to_stop_training():
    class Prune(Exception):
        pass

    def on_epoch(stats):
        if stats.epoch == 2:
            raise Prune

    with pytest.raises(Prune):
        transfer_learner(_lenet(), device="cpu").fit(_domain(16, 0), epochs=5, batch_size=8, on_epoch=on_epoch)


def test_feature_cache_matches_the_uncached_head_training():
    heads = []
    for cache in (True, False):
        model = _lenet()
        transfer_learner(model, lr=0.05, device="cpu").fit(_domain(40, 0), epochs=2, strategy="feature_extraction",
                                                           batch_size=16, seed=3, feature_cache=cache)
        heads.append(model.head.weight.detach())
    assert torch.allclose(heads[0], heads[1], atol=1e-5)
    with pytest.raises(ValueError, match="feature_cache needs"):
        transfer_learner(_lenet(), device="cpu").fit(_domain(16, 0), 1, "feature_extraction", augment=True,
                                                     feature_cache=True)


def test_schedules_warm_up_and_decay():
    assert [lr_factor(t, 10, 2, "constant") for t in (0, 1, 5)] == [0.5, 1.0, 1.0]
    for schedule in ("cosine", "onecycle"):
        learner = transfer_learner(_lenet(), lr=0.1, optimizer="adamw", schedule=schedule, warmup_epochs=1,
                                   label_smoothing=0.1, clip_grad_norm=1.0, device="cpu")
        lrs = [h.lr for h in learner.fit(_domain(32, 0), epochs=4, batch_size=16).history]
        assert lrs[-1] < lrs[1] < 0.1 + 1e-9
    with pytest.raises(ValueError, match="nesterov needs"):
        OptimConfig(optimizer="adamw", nesterov=True)


def test_nan_loss_is_a_clear_error():
    bad = _domain(16, 0)
    bad.x[0, 0, 0, 0] = float("nan")
    learner = transfer_learner(_lenet(), lr=0.01, device="cpu")
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1"):
        learner.fit(bad, epochs=1, batch_size=16)


def test_hidden_labels_are_not_trained_on_and_bad_arguments_are_clear():
    data = _domain(16, 0)
    hidden = Domain("toy", data.x, torch.full_like(data.y, -1))
    learner = transfer_learner(_lenet(), device="cpu")
    with pytest.raises(ValueError, match="no labelled training images"):
        learner.fit(hidden, epochs=1)
    with pytest.raises(ValueError, match="unknown strategy 'freeze_all'"):
        learner.fit(data, epochs=1, strategy="freeze_all")
    with pytest.raises(ValueError, match="needs target data"):
        learner.fit(data, epochs=1, adaptation="dann")


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        transfer_learner(_lenet(), device="cuda")


def test_weights_round_trip(tmp_path):
    model = _lenet()
    sha = models.save_weights(model, tmp_path / "w.pt")
    loaded = models.load_weights("lenet", 10, tmp_path / "w.pt")
    assert len(sha) == 64
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(),
                                                 strict=True))
    with pytest.raises(FileNotFoundError, match="no weights file"):
        models.load_weights("lenet", 10, tmp_path / "missing.pt")
