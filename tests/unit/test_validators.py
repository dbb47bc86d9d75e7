"""Label-free validators against hand-computed values on tiny inputs, and their behaviour on real outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torchtransfer.tune import validators as v


def test_information_maximisation_by_hand():
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    mean = torch.tensor([0.55, 0.45])
    h = lambda q: -sum(float(x) * math.log(float(x)) for x in q)  # noqa: E731
    expected = h(mean) - (h(p[0]) + h(p[1])) / 2
    assert v.information_maximisation(p) == pytest.approx(expected, abs=1e-6)
    assert v.information_maximisation(torch.tensor([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.0, abs=1e-6)


def test_snd_by_hand_on_three_samples():
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    tau = 0.05
    # sample 0's neighbours: sample 1 (cos 1) and 2 (cos 0) → softmax over (1/τ, 0); sample 2: (0, 0) → uniform
    a = torch.softmax(torch.tensor([1 / tau, 0.0], dtype=torch.float64), 0)
    h = lambda q: -float((q * q.log()).sum())  # noqa: E731
    expected = (h(a) + h(a) + math.log(2)) / 3
    assert v.soft_neighbourhood_density(p, tau) == pytest.approx(expected, rel=1e-6)


def test_bnm_by_hand():
    p = torch.tensor([[0.6, 0.4], [0.6, 0.4]])  # rank one: one singular value ‖p‖·√2
    assert v.batch_nuclear_norm(p) == pytest.approx(math.sqrt(0.36 + 0.16) * math.sqrt(2) / 2, rel=1e-6)
    assert v.batch_nuclear_norm(torch.eye(2)) > v.batch_nuclear_norm(p)  # diverse predictions score higher


def test_dev_risk_by_hand_and_its_control_variate():
    loss, w = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0, 2.5])  # mean weight ≠ 1: the control variate acts
    weighted = w * loss  # 0.5, 2, 10
    eta = -np.cov(weighted, w)[0, 1] / np.var(w, ddof=1)
    assert v.dev_risk(loss, w) == pytest.approx(weighted.mean() + eta * w.mean() - eta)
    assert v.dev_risk(loss, w) != pytest.approx(weighted.mean())
    assert v.dev_risk(loss, np.ones(3)) == pytest.approx(loss.mean())


def test_dev_prefers_the_model_with_lower_loss_where_the_target_lies():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(200, 2, generator=gen)
    target = torch.randn(200, 2, generator=gen) + torch.tensor([2.0, 0.0])
    val = torch.randn(400, 2, generator=gen)  # source validation: the source training distribution
    labels = (val[:, 0] > 1.0).long()
    near_target = val[:, :1] > 1.0
    right = torch.where(near_target, torch.tensor([0.05, 0.95]), torch.tensor([0.5, 0.5]))  # right near the target
    wrong = torch.where(near_target, torch.tensor([0.95, 0.05]), torch.tensor([0.05, 0.95]))  # right nowhere...
    wrong[~near_target.squeeze(1)] = torch.tensor([0.95, 0.05])  # ...except far from it, where it is sure
    good = v.deep_embedded_validation(val, right, labels, train, target, seed=0)
    bad = v.deep_embedded_validation(val, wrong, labels, train, target, seed=0)
    assert good > bad


def test_class_ami_is_one_when_predictions_follow_the_clusters_and_deterministic():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.arange(60) % 3
    feats = centres[labels] + 0.1 * torch.randn(60, 2, generator=gen)
    probs = torch.nn.functional.one_hot(labels, 3).float()
    assert v.class_ami(feats, probs, seed=0) == pytest.approx(1.0)
    shuffled = probs[torch.randperm(60, generator=gen)]
    assert v.class_ami(feats, shuffled, seed=0) < 0.2
    assert v.class_ami(feats, shuffled, seed=3) == v.class_ami(feats, shuffled, seed=3)


def test_score_all_names_every_validator():
    gen = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(30, 3, generator=gen), 1)
    feats = torch.randn(30, 4, generator=gen)
    out = v.Outputs(probs, feats, probs, feats, probs.argmax(1), source_train_features=feats + 1)
    scores = v.score_all(out, seed=0)
    assert tuple(scores) == v.VALIDATORS and scores["source_val_acc"] == 1.0
    assert scores == v.score_all(out, seed=0)
