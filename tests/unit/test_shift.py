import math

import numpy as np
import pytest
import torch
from scipy import stats

from torchtransfer import shift
from torchtransfer.shift.a_distance import proxy_a_distance


def _gauss(n, d, seed, mean=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


# hand-computed with k(a, b) = exp(-(a - b)² / 2), l = 1, on 1-d points
X, Y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])
E = math.exp


def test_unbiased_and_biased_match_hand_computed_values():
    # xx: k(0,1) = e^-1/2; yy: k(0,2) = e^-2; xy mean: (1 + e^-2 + 2 e^-1/2) / 4
    assert shift.mmd2(X, Y, bandwidth=1.0) == pytest.approx((E(-2) - 1) / 2, rel=1e-12)
    assert shift.mmd2(X, Y, bandwidth=1.0, estimator="biased") == pytest.approx((1 - E(-0.5)) / 2, rel=1e-12)


def test_linear_estimator_matches_hand_computed_value():
    # pairs (x1, x2) = (0, 1), (y1, y2) = (2, 4): h = k(0,1) + k(2,4) - k(0,4) - k(1,2)
    y = torch.tensor([[2.0], [4.0]])
    assert shift.mmd2(X, y, bandwidth=1.0, estimator="linear") == pytest.approx(E(-2) - E(-8), rel=1e-12)


def test_multi_kernel_is_the_mean_of_single_kernels():
    x, y = _gauss(30, 3, 0), _gauss(25, 3, 1, mean=0.5)
    single = [shift.mmd2(x, y, bandwidth=l) for l in (0.5, 2.0)]
    assert shift.mmd2(x, y, bandwidth=[0.5, 2.0]) == pytest.approx(np.mean(single), rel=1e-12)
    res = shift.permutation_test(x, y, bandwidth=(0.5, 2.0), n_permutations=10)
    assert res.bandwidth == (0.5, 2.0) and res.mmd2 == pytest.approx(np.mean(single), rel=1e-12)


def test_symmetric_and_invariant_to_row_order():
    x, y = _gauss(40, 3, 0), _gauss(30, 3, 1, mean=0.3)
    px, py = torch.randperm(40), torch.randperm(30)
    for est in ("unbiased", "biased"):
        ref = shift.mmd2(x, y, bandwidth=1.0, estimator=est)
        assert shift.mmd2(y, x, bandwidth=1.0, estimator=est) == pytest.approx(ref, rel=1e-12)
        assert shift.mmd2(x[px], y[py], bandwidth=1.0, estimator=est) == pytest.approx(ref, rel=1e-12)


def test_null_matches_a_loop_over_permutations_on_the_same_kernel_matrix():
    x, y = _gauss(12, 2, 0), _gauss(9, 2, 1, mean=0.4)
    res = shift.permutation_test(x, y, n_permutations=30, bandwidth=1.3, seed=2)
    z = torch.cat([x, y])
    masks = shift.permutation_masks(21, 12, 30, torch.Generator().manual_seed(2)).T.bool()  # (30, 21)
    loop = [shift.mmd2(z[w], z[~w], bandwidth=1.3) for w in masks]
    assert len(res.null) == 30
    np.testing.assert_allclose(res.null, loop, rtol=1e-9)
    assert res.mmd2 == pytest.approx(shift.mmd2(x, y, bandwidth=1.3), rel=1e-12)
    assert res.p_value == (1 + sum(v >= res.mmd2 for v in loop)) / 31


def test_result_does_not_depend_on_the_memory_budget():
    """A tiny budget forces row blocks of 1-2 rows and several permutation passes: same numbers."""
    x, y = _gauss(50, 3, 0), _gauss(40, 3, 1, mean=0.2)
    big = shift.permutation_test(x, y, n_permutations=300, seed=5)
    small = shift.permutation_test(x, y, n_permutations=300, seed=5, memory_budget=1000)
    assert small.p_value == big.p_value and small.bandwidth == big.bandwidth
    np.testing.assert_allclose(small.null, big.null, rtol=1e-10)
    assert shift.mmd2(x, y, memory_budget=1000) == pytest.approx(big.mmd2, rel=1e-12)


def test_seeded_and_p_value_formula():
    x, y = _gauss(30, 3, 0), _gauss(30, 3, 1, mean=0.3)
    a = shift.permutation_test(x, y, n_permutations=50, seed=4)
    assert a == shift.permutation_test(x, y, n_permutations=50, seed=4)
    assert a.null != shift.permutation_test(x, y, n_permutations=50, seed=5).null
    assert a.p_value == (1 + sum(v >= a.mmd2 for v in a.null)) / 51
    assert (a.n_permutations, a.n_source, a.n_target, a.seed) == (50, 30, 30, 4)
    none = shift.permutation_test(x, y, n_permutations=0)
    assert none.p_value == 1.0 and none.null == ()


def test_false_positive_rate_under_h0_lies_in_a_binomial_band():
    """300 independent H0 draws, level-α test at α = 0.05 (reject when p ≤ α): #rejections ~ Bin(300, 0.05)."""
    draws, alpha = 300, 0.05
    rejections = sum(
        shift.permutation_test(_gauss(15, 2, 2 * s), _gauss(15, 2, 2 * s + 1), n_permutations=199,
                               seed=s).p_value <= alpha
        for s in range(draws))
    low, high = stats.binom.interval(0.999, draws, alpha)
    assert low <= rejections <= high, rejections


def test_power_on_a_clear_shift():
    rejections = sum(
        shift.permutation_test(_gauss(30, 2, 2 * s), _gauss(30, 2, 2 * s + 1, mean=1.0), n_permutations=99,
                               seed=s).p_value <= 0.05
        for s in range(20))
    assert rejections >= 19


def test_unbiased_averages_zero_under_h0_and_biased_does_not():
    unb = [shift.mmd2(_gauss(50, 4, s), _gauss(50, 4, 100 + s)) for s in range(40)]
    bia = [shift.mmd2(_gauss(50, 4, s), _gauss(50, 4, 100 + s), estimator="biased") for s in range(40)]
    assert abs(np.mean(unb)) < 3 * np.std(unb) / np.sqrt(40)
    assert np.mean(bia) > 10 * np.std(unb) / np.sqrt(40)


def test_class_conditional_mmd_flags_only_the_moved_class():
    x, y = _gauss(60, 2, 0), _gauss(60, 2, 1)
    lx, ly = torch.arange(60) % 3, torch.arange(60) % 3
    y[ly == 2] += 2.0
    ly[:3] = -1  # unlabelled rows are ignored
    per = shift.class_conditional_mmd(x, y, lx, ly)
    assert sorted(per) == [0, 1, 2]
    assert per[2] > 0.2 and max(abs(per[0]), abs(per[1])) < 0.1
    with pytest.raises(ValueError, match="labels"):
        shift.class_conditional_mmd(x, y, lx[:5], ly)


def test_proxy_a_distance_ranges_from_same_to_separable():
    x = _gauss(200, 5, 0)
    assert proxy_a_distance(x, _gauss(200, 5, 1)) < 0.4
    assert proxy_a_distance(x, _gauss(150, 5, 1, mean=3.0)) > 1.9
    assert proxy_a_distance(x, _gauss(200, 5, 1), seed=1) == proxy_a_distance(
        x, _gauss(200, 5, 1), seed=1)


def test_images_numpy_and_median_heuristic():
    imgs = np.random.default_rng(0).random((20, 1, 4, 4))
    assert shift.as_matrix(imgs).shape == (20, 16)
    assert shift.mmd2(imgs[:10], imgs[10:]) == pytest.approx(shift.mmd2(imgs[:10].reshape(10, -1), imgs[10:]))
    z = torch.tensor([[0.0], [1.0], [3.0]])
    assert shift.median_bandwidth(z) == pytest.approx(2.0**0.5)


@pytest.mark.parametrize("call, match", [
    (lambda: shift.median_bandwidth(torch.zeros(5, 2)), "identical"),
    (lambda: shift.permutation_test(torch.zeros(5, 2), torch.zeros(5, 3)), "different dimensions"),
    (lambda: shift.mmd2(torch.ones(1, 2), torch.zeros(5, 2)), "at least 2"),
    (lambda: shift.mmd2(X, Y, estimator="quadratic"), "estimator"),
    (lambda: shift.permutation_test(X, Y, estimator="linear"), "estimator"),
    (lambda: shift.mmd2(X, Y, bandwidth=-1.0), "bandwidth"),
    (lambda: shift.mmd2(X, Y, bandwidth=[]), "bandwidth"),
    (lambda: shift.mmd2(torch.tensor([[float("nan")], [0.0]]), Y), "source: contains NaN"),
    (lambda: shift.mmd2(torch.zeros(4), Y), "source: expected shape"),
    (lambda: shift.permutation_test(X, Y, n_permutations=-1), "n_permutations"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
