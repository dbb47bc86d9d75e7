"""The promotion gate: each rule, in order, on plain numbers."""

import pytest

from torchtransfer.registry.promotion import Scored, passes

FP = "a" * 64


def test_first_version_becomes_champion():
    decision = passes(Scored("1", 0.42, FP), None)
    assert decision.promote and "no champion yet" in decision.reason


@pytest.mark.parametrize(("challenger", "champion", "margin", "promote"), [
    (0.91, 0.90, 0.0, True),
    (0.90, 0.90, 0.0, False),  # a tie keeps the incumbent
    (0.89, 0.90, 0.0, False),
    (0.905, 0.90, 0.01, False),  # better, but not by min_improvement
    (0.92, 0.90, 0.01, True),
])
def test_margin_must_exceed_min_improvement(challenger, champion, margin, promote):
    decision = passes(Scored("2", challenger, FP), Scored("1", champion, FP), min_improvement=margin)
    assert decision.promote is promote
    assert decision.margin == pytest.approx(challenger - champion)
    assert decision.challenger_acc == challenger and decision.champion_acc == champion
    assert f"{challenger:.4f}" in decision.reason and f"{champion:.4f}" in decision.reason


def test_floor_rejects_a_weak_first_version_and_a_weak_improvement():
    assert not passes(Scored("1", 0.5, FP), None, min_accuracy=0.6).promote
    decision = passes(Scored("2", 0.55, FP), Scored("1", 0.3, FP), min_accuracy=0.6)
    assert not decision.promote and "registry.min_accuracy" in decision.reason
    assert passes(Scored("2", 0.65, FP), Scored("1", 0.3, FP), min_accuracy=0.6).promote


def test_scores_on_different_test_data_are_not_compared():
    decision = passes(Scored("2", 0.99, FP), Scored("1", 0.10, "b" * 64, note="re-evaluation failed: OSError"))
    assert not decision.promote and not decision.comparable
    assert "cannot compare" in decision.reason and "re-evaluation failed" in decision.reason
    assert "aaaaaaaaaaaa" in decision.reason and "bbbbbbbbbbbb" in decision.reason


def test_champion_without_accuracy_cannot_be_compared():
    decision = passes(Scored("2", 0.9, FP), Scored("1", None, FP))
    assert not decision.promote and not decision.comparable


def test_challenger_that_is_already_champion_is_a_no_op():
    decision = passes(Scored("3", 0.9, FP), Scored("3", 0.9, FP))
    assert not decision.promote and "already the champion" in decision.reason


def test_decision_serialises_with_its_numbers():
    d = passes(Scored("2", 0.8, FP), Scored("1", 0.7, FP)).as_dict()
    assert d["promote"] is True and d["margin"] == pytest.approx(0.1) and set(d) >= {"reason", "comparable"}
