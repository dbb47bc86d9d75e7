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

pytestmark = pytest.mark.usefixtures("one_thread")


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


def _nuisance_domains(n=128):
    """Two domains that share the class signal (inputs 0–1) and differ only in nuisance inputs 2–3 (source
    N(0, 1), target N(1, 1.5²)): one shared linear map *can* align them without collapsing, by ignoring the
    nuisance inputs and keeping the signal."""
    def domain(seed, shift, scale):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 2, (n,), generator=g)
        signal = torch.randn(n, 2, generator=g) * 0.5
        signal[:, 0] += 1.5 * (2 * y - 1)
        return torch.cat([signal, torch.randn(n, 2, generator=g) * scale + shift], 1), y
    return domain(0, 0.0, 1.0), domain(1, 1.0, 1.5)


def _domain_probe(a, b) -> float:
    """Held-out accuracy of a quadratic logistic domain classifier on standardised features: 0.5 when the
    domains are indistinguishable; blind to the features' scale, so shrinking them cannot fake alignment."""
    z = torch.cat([a, b])
    z = (z - z.mean(0)) / z.std(0)
    z = torch.cat([z, z**2], 1)
    d = torch.cat([torch.zeros(len(a)), torch.ones(len(b))])
    idx = torch.randperm(len(z), generator=torch.Generator().manual_seed(0))
    fit, held = idx[: len(z) // 2], idx[len(z) // 2:]
    clf = nn.Linear(z.shape[1], 1)
    opt = torch.optim.Adam(clf.parameters(), lr=0.05)
    for _ in range(200):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(clf(z[fit]).squeeze(1), d[fit])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((clf(z[held]).squeeze(1) > 0).float() == d[held]).float().mean().item()


def _train_with_alignment(method, weight, steps=300):
    """Source cross-entropy + ``method``'s loss on a shared linear map f and head h; f's weights and the
    domains' features before/after."""
    torch.manual_seed(0)
    (xs, ys), (xt, yt) = _nuisance_domains()
    f, h = nn.Linear(4, 4), nn.Linear(4, 2)
    aligner = None if method == "none" else make_aligner(method, 4, 2, target_features=f(xt).detach(), hidden=16)
    before = f.weight.detach().clone(), _domain_probe(f(xs).detach(), f(xt).detach())
    params = [*f.parameters(), *h.parameters(), *(aligner.parameters() if aligner else [])]
    opt = torch.optim.Adam(params, lr=0.01)
    for _ in range(steps):
        fs, ft = f(xs), f(xt)
        loss = torch.nn.functional.cross_entropy(h(fs), ys)
        if aligner is not None:
            loss = loss + aligner(fs, ft, weight, h(fs), h(ft)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    target_acc = (h(f(xt)).argmax(1) == yt).float().mean().item()
    return before, (f.weight.detach(), _domain_probe(f(xs).detach(), f(xt).detach())), target_acc


@pytest.mark.parametrize(("method", "weight"), [("dan", 1.0), ("coral", 100.0)])
def test_alignment_ignores_what_differs_between_domains_and_keeps_the_signal(method, weight):
    """The map learns to drop the nuisance inputs (their weights fall below 40 %) while the signal weights do
    not shrink and the target stays classified: the domains get closer without the features collapsing.
    The source cross-entropy alone (the control) leaves the nuisance weights as they were."""
    (w0, probe0), (w1, probe1), target_acc = _train_with_alignment(method, weight)
    (_, _), (w_none, probe_none), _ = _train_with_alignment("none", 0.0)
    assert w1[:, 2:].norm() < 0.4 * w0[:, 2:].norm()  # nuisance ignored
    assert w1[:, :2].norm() >= 0.9 * w0[:, :2].norm() and target_acc > 0.95  # no collapse
    assert w_none[:, 2:].norm() > 0.8 * w0[:, 2:].norm()  # the control does not drop it
    if method == "dan":  # MMD matches whole distributions: a domain classifier is left at chance
        assert probe1 < 0.6 < probe_none and probe0 > 0.7


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
