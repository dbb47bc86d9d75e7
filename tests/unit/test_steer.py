"""The shift verdict on the search space, both ways, as a pure function."""

import pytest

from torchtransfer.config import FloatRange, SearchConfig
from torchtransfer.tune.search import steer

SPACE = SearchConfig(method=("none", "dann", "dan"), adaptation_weight=FloatRange(low=0.1, high=1.0))


def test_significant_shift_keeps_the_adaptation_options():
    space, reason = steer(SPACE, p_value=0.001, alpha=0.05)
    assert space == SPACE
    assert reason.startswith("adaptation kept") and "0.001 < alpha = 0.05" in reason


@pytest.mark.parametrize("p", [0.05, 0.5, 1.0])
def test_no_significant_shift_removes_adaptation(p):
    space, reason = steer(SPACE, p_value=p, alpha=0.05)
    assert space.method == ("none",)
    assert (space.adaptation_weight.low, space.adaptation_weight.high) == (0.0, 0.0)
    assert (space.lr, space.epochs, space.strategy) == (SPACE.lr, SPACE.epochs, SPACE.strategy)
    assert reason.startswith("adaptation removed") and ">= alpha = 0.05" in reason


def test_no_test_leaves_the_space_alone():
    assert steer(SPACE, None, 0.05) == (SPACE, "unchanged: no permutation test ran (shift.n_permutations = 0)")
