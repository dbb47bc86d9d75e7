import pytest
import torch

from torchtransfer import models, transfer_learner
from torchtransfer.adaptation import mmd_loss
from torchtransfer.datasets import Domain


def _domain(n, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    for i, label in enumerate(y.tolist()):  # a class-specific bright bar makes the task learnable
        x[i, 0, 2 * label + 2: 2 * label + 5, 4:24] = 1.0 - shift
    return Domain("toy", x, y)


def test_loss_falls_when_overfitting_one_batch_of_16():
    data = _domain(16, 0)
    learner = transfer_learner(models.build_model("lenet", 10, seed=0), lr=0.05, momentum=0.9, device="cpu")
    result = learner.fit(data, epochs=30, batch_size=16, seed=0)
    losses = [h.train_loss for h in result.history]
    assert losses[-1] < 0.2 * losses[0]
    assert learner.evaluate(data)["acc"] == 1.0


def test_same_seed_same_weights_and_best_epoch_restored():
    def run():
        model = models.build_model("lenet", 10, seed=1)
        learner = transfer_learner(model, lr=0.02, device="cpu")
        res = learner.fit(_domain(64, 1), epochs=3, val_data=_domain(32, 2), target=_domain(48, 3, 0.3),
                          adaptation_weight=0.5, batch_size=16, augment=True, seed=5)
        return res, model.state_dict()

    (r1, w1), (r2, w2) = run(), run()
    assert r1 == r2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert r1.best_val_acc == max(h.val_acc for h in r1.history)


def test_feature_extraction_trains_only_the_head():
    model = models.build_model("lenet", 10, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    transfer_learner(model, lr=0.05, device="cpu").fit(_domain(32, 0), epochs=2, strategy="feature_extraction",
                                                       batch_size=16)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("trunk"))
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_nan_loss_is_a_clear_error():
    bad = _domain(16, 0)
    bad.x[0, 0, 0, 0] = float("nan")
    learner = transfer_learner(models.build_model("lenet", 10, seed=0), lr=0.01, device="cpu")
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1"):
        learner.fit(bad, epochs=1, batch_size=16)


def test_hidden_labels_are_not_trained_on():
    data = _domain(16, 0)
    hidden = Domain("toy", data.x, torch.full_like(data.y, -1))
    learner = transfer_learner(models.build_model("lenet", 10, seed=0), device="cpu")
    with pytest.raises(ValueError, match="no labelled training images"):
        learner.fit(hidden, epochs=1)


def test_mmd_loss_is_differentiable_and_larger_for_shifted_features():
    s = torch.randn(32, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    t = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    near, far = mmd_loss(s, t, [2.0, 4.0]), mmd_loss(s, t + 3.0, [2.0, 4.0])
    assert far > near
    far.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        transfer_learner(models.build_model("lenet", 10, seed=0), device="cuda")


def test_weights_round_trip(tmp_path):
    model = models.build_model("lenet", 10, seed=0)
    sha = models.save_weights(model, tmp_path / "w.pt")
    loaded = models.load_weights("lenet", 10, tmp_path / "w.pt")
    assert len(sha) == 64
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(),
                                                 strict=True))
    with pytest.raises(FileNotFoundError, match="no weights file"):
        models.load_weights("lenet", 10, tmp_path / "missing.pt")
