"""Each adaptation loss: ≈ 0 on identical domains, larger on shifted ones, and it falls as training aligns."""

import math

import pytest
import torch
from torch import nn

from torchtransfer.train.adaptation import AdaptationSpec, ramp
from torchtransfer.train.alignment import (
    coral_loss,
    domain_loss,
    grad_reverse,
    importance_weights,
    kernel_bandwidths,
    make_aligner,
    mmd_loss,
)


def _gauss(n, d, seed, shift=0.0, scale=1.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale + shift


def test_gradient_reversal_flips_the_sign_and_scales():
    x = torch.randn(5, 3, requires_grad=True)
    (grad_reverse(x, 0.5) * torch.arange(3.0)).sum().backward()
    assert torch.equal(grad_reverse(x, 0.5), x)  # identity forward
    assert torch.allclose(x.grad, -0.5 * torch.arange(3.0).expand(5, 3))


def test_dann_ramp_and_spec_validation():
    assert ramp(0.0) == 0.0 and ramp(1.0) == pytest.approx(1.0, abs=1e-4) and 0.4 < ramp(0.1) < 0.5
    assert AdaptationSpec(schedule="constant").coeff(0.0) == 1.0
    with pytest.raises(ValueError, match="adaptation.method 'mmd'"):
        AdaptationSpec(method="mmd")


@pytest.mark.parametrize("loss", ["mmd", "coral"])
def test_discrepancy_is_near_zero_on_identical_domains(loss):
    s, t, far = _gauss(256, 8, 0), _gauss(256, 8, 1), _gauss(256, 8, 2, shift=1.0, scale=2.0)
    fn = (lambda a, b: mmd_loss(a, b, kernel_bandwidths(torch.cat([a, b])))) if loss == "mmd" else coral_loss
    same, shifted = fn(s, t).item(), fn(s, far).item()
    assert abs(same) < 0.02 * shifted and shifted > 0


def _train_disc(disc, s, t, steps=150):
    opt = torch.optim.Adam(disc.parameters(), lr=0.01)
    for _ in range(steps):
        loss = domain_loss(disc, s, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return domain_loss(disc, s, t).item()


def test_domain_classifier_cannot_tell_identical_domains_apart():
    torch.manual_seed(0)
    s, t, far = _gauss(256, 4, 0), _gauss(256, 4, 1), _gauss(256, 4, 2, shift=1.5)
    same, shifted = (make_aligner("dann", 4, hidden=16).disc for _ in range(2))
    _train_disc(same, s[:128], t[:128])
    _train_disc(shifted, s[:128], far[:128])
    # held out, the alignment gap log 2 − BCE is ≈ 0 for identical domains and large for shifted ones
    assert math.log(2) - domain_loss(same, s[128:], t[128:]).item() < 0.05
    assert math.log(2) - domain_loss(shifted, s[128:], far[128:]).item() > 0.3


def test_importance_weights_are_uniform_on_identical_domains_and_clipped():
    s, t = _gauss(2048, 2, 0), _gauss(2048, 2, 1)
    rw = make_aligner("reweight", 2, hidden=16, max_importance_weight=5.0)
    _train_disc(rw.disc, s[:1024], t[:1024], steps=50)
    w = rw(s[1024:], t[1024:], 1.0).source_weights  # held out
    assert w.mean().item() == pytest.approx(1.0) and w.std().item() < 0.2
    spread = importance_weights(torch.tensor([-10.0, 0.0, 10.0]), max_weight=5.0)
    assert spread.max() / spread[1] == pytest.approx(5.0) and spread.mean().item() == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["dan", "coral", "dann"])
def test_alignment_loss_falls_as_training_aligns_the_domains(method):
    """A linear feature map trained only on the alignment loss pulls a shifted target onto the source."""
    torch.manual_seed(0)
    xs, xt = _gauss(128, 4, 0), _gauss(128, 4, 1, shift=2.0, scale=1.5)
    f = nn.Linear(4, 4)
    aligner = make_aligner(method, 4, target_features=f(xt).detach(), hidden=16)

    def gap() -> float:  # the discrepancy the method targets (CORAL: covariances only), before and after
        with torch.no_grad():
            a, b = f(xs), f(xt)
            return coral_loss(a, b).item() if method == "coral" else mmd_loss(a, b, kernel_bandwidths(a)).item()

    before = gap()
    opt = torch.optim.SGD([*f.parameters(), *aligner.parameters()], lr=0.05)
    for _ in range(150):
        loss = aligner(f(xs), f(xt), 10.0 if method == "coral" else 1.0).loss  # CORAL is /4d²: small
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert gap() < 0.3 * before


def test_reweighting_moves_the_weighted_source_towards_the_target():
    xs, xt = _gauss(512, 1, 0), _gauss(512, 1, 1, shift=1.0)
    rw = make_aligner("reweight", 1, hidden=16, max_importance_weight=20.0)
    before = abs(xs.mean() - xt.mean()).item()
    _train_disc(rw.disc, xs, xt, steps=150)
    w = rw(xs, xt, 1.0).source_weights  # (m,)
    after = abs((w[:, None] * xs).mean() - xt.mean()).item()
    assert after < 0.3 * before


def test_the_search_space_chooses_the_method_and_replays_it(tmp_path):
    import optuna

    from torchtransfer.config import SearchConfig, load_config
    from torchtransfer.tune.search import steer, suggest_hparams

    space = SearchConfig(method=("none", "dan", "dann", "coral", "reweight"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    chosen = set()
    for _ in range(12):
        trial = study.ask()
        hp = suggest_hparams(trial, space)
        chosen.add(hp.method)
        assert suggest_hparams(optuna.trial.FixedTrial(trial.params), space) == hp
        assert hp.as_params()["hp.method"] == hp.method
        study.tell(trial, 0.5)
    assert len(chosen) >= 3
    assert steer(space, p_value=0.9, alpha=0.05)[0].method == ("none",)
    assert load_config("conf/default.yaml", overrides=["search.method=[none,coral]"]).search.method == ("none", "coral")
    minimal = tmp_path / "minimal.yaml"  # no search.method: the space is [adaptation.method]
    minimal.write_text("experiment: x\nregistry: {model_name: x}\nadaptation: {method: coral}\ndata:\n"
                       "  source: {name: mnist, train: 10, val: 10, test: 10}\n"
                       "  target: {name: usps, train: 10, val: 10, test: 10}\n")
    assert load_config(minimal).search.method == ("coral",)
