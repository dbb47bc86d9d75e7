"""The aggregated (MMDAgg-style) test: hand-checked statistics and min-p, level on real MNIST, power, seeding."""

import numpy as np
import pytest
import torch
from scipy import stats

from torchtransfer import shift
from torchtransfer.data.datasets import mnist
from torchtransfer.shift.aggregated import min_p_value, split_p_counts


def _gauss(n, d, seed, mean=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """The real MNIST sample (5,000 × 784 pixels in [0, 1]) in a seeded order."""
    x = mnist().x.reshape(5000, -1).double()
    return x[torch.randperm(5000, generator=torch.Generator().manual_seed(0))]


def test_every_bandwidth_matches_its_own_median_style_test_on_the_same_permutations():
    """Each row of the stacked engine is exactly the single-kernel test at that bandwidth (same seed, same
    splits): its MMD², its null and its own p-value; mmd2/bandwidth/null are the median bandwidth's."""
    x, y = _gauss(14, 2, 0), _gauss(11, 2, 1, mean=0.5)
    res = shift.aggregated_test(x, y, n_permutations=40, seed=3)
    assert res.test == "aggregated" and len(res.bandwidths) == len(shift.AGGREGATED_SCALES)
    l_med = shift.median_bandwidth(torch.cat([x, y]), 3)
    assert res.bandwidth == pytest.approx(l_med, rel=1e-12)
    for l, mmd2, p in zip(res.bandwidths, res.mmd2s, res.p_values, strict=True):
        single = shift.permutation_test(x, y, n_permutations=40, bandwidth=l, seed=3)
        assert mmd2 == pytest.approx(single.mmd2, rel=1e-9) and p == single.p_value
        if l == res.bandwidth:
            np.testing.assert_allclose(res.null, single.null, rtol=1e-9)
            assert res.mmd2 == pytest.approx(single.mmd2, rel=1e-9)


def test_corrected_p_matches_a_hand_loop_over_splits_and_bandwidths():
    """P = #{b : V(b) ≤ V(0)} / (B + 1), V(b) = min_l p_l(b) − σ(max_l z_l(b)) / (B + 1), each p_l(b) the rank
    of split b among all B + 1 and z_l(b) its statistic standardised over them."""
    x, y = _gauss(9, 1, 4), _gauss(8, 1, 5, mean=0.8)
    scales = (0.5, 1.0, 2.0)
    res = shift.aggregated_test(x, y, n_permutations=25, scales=scales, seed=1)
    z = torch.cat([x, y])
    masks = shift.permutation_masks(17, 9, 25, torch.Generator().manual_seed(1)).T.bool()  # (25, 17)
    splits = [torch.arange(17) < 9, *masks]  # the observed split first
    t = [[shift.mmd2(z[w], z[~w], bandwidth=l) for w in splits] for l in res.bandwidths]  # (K, B + 1)
    p = [[sum(v >= row[b] - 1e-12 * abs(row[b]) for v in row) / 26 for b in range(26)] for row in t]
    zs = [[(v - np.mean(row)) / np.std(row, ddof=1) for v in row] for row in t]
    score = [min(p[k][b] for k in range(3)) - 1 / (1 + np.exp(-max(zs[k][b] for k in range(3)))) / 26
             for b in range(26)]
    assert res.p_value == pytest.approx(sum(v <= score[0] + 1e-12 for v in score) / 26, abs=1e-15)
    assert res.p_values == pytest.approx(tuple(row[0] for row in p), abs=1e-15)
    uncorrected = min(row[0] for row in p)
    assert res.p_value > uncorrected  # the correction costs something here


def test_min_p_on_hand_made_statistics():
    s = torch.tensor([[6.0, 1.0, 2.0, 3.0], [0.0, 4.0, 1.0, 2.0]])  # (K = 2, 1 + B = 4)
    assert split_p_counts(s).tolist() == [[1, 4, 3, 2], [4, 1, 3, 2]]
    assert min_p_value(s) == 1 / 4  # splits 0 and 1 tie on count 1; split 0's standardised maximum is larger
    assert min_p_value(s[[1, 0]][:, [1, 0, 2, 3]]) == 2 / 4  # the same splits, observed now the weaker one
    assert min_p_value(s[:1]) == 1 / 4  # one kernel: the plain permutation p-value
    assert min_p_value(torch.ones(3, 6)) == 1.0  # all tied: nothing is significant
    assert min_p_value(torch.zeros(3, 1)) == 1.0  # B = 0


def test_false_positive_rate_on_real_mnist_samples_lies_in_a_binomial_band(digits, one_thread):
    """200 H0 draws, each two disjoint random MNIST samples of 20 images: #(P ≤ 0.05) ~ Bin(200, ≤ 0.05), and
    P is uniform at every level, not only at α: its mean is 0.5 ± 0.02 (an uncorrected min-p gives 0.35)."""
    draws, alpha = 200, 0.05
    p_values = []
    for s in range(draws):
        pick = torch.randperm(5000, generator=torch.Generator().manual_seed(s))[:40]
        p_values.append(shift.aggregated_test(digits[pick[:20]], digits[pick[20:]], n_permutations=99,
                                              seed=s).p_value)
    rejections = sum(p <= alpha for p in p_values)
    low, high = stats.binom.interval(0.999, draws, alpha)
    assert low <= rejections <= high, rejections
    assert 0.435 < np.mean(p_values) < 0.575, np.mean(p_values)  # ± 3.5 standard errors of a uniform mean


def test_power_on_rotated_mnist(digits, one_thread):
    """MNIST vs a disjoint MNIST sample rotated by 15°, 60 images per side: rejected (almost) every time."""
    images = digits.reshape(-1, 1, 28, 28).float()
    theta = torch.tensor([[np.cos(0.26), -np.sin(0.26), 0.0], [np.sin(0.26), np.cos(0.26), 0.0]],
                         dtype=torch.float32).expand(60, 2, 3)
    rejections = 0
    for s in range(8):
        a, b = images[120 * s: 120 * s + 60], images[120 * s + 60: 120 * s + 120]
        grid = torch.nn.functional.affine_grid(theta, b.shape, align_corners=False)
        rotated = torch.nn.functional.grid_sample(b, grid, align_corners=False)
        rejections += shift.aggregated_test(a, rotated, n_permutations=99, seed=s).p_value <= 0.05
    assert rejections >= 7, rejections


def test_seeded_and_independent_of_the_memory_budget():
    x, y = _gauss(40, 3, 0), _gauss(35, 3, 1, mean=0.2)
    a = shift.aggregated_test(x, y, n_permutations=150, seed=4)
    assert a == shift.aggregated_test(x, y, n_permutations=150, seed=4)
    assert a.null != shift.aggregated_test(x, y, n_permutations=150, seed=5).null
    small = shift.aggregated_test(x, y, n_permutations=150, seed=4, memory_budget=2000)  # 1-row blocks
    assert small.p_value == a.p_value and small.p_values == a.p_values
    np.testing.assert_allclose(small.mmd2s, a.mmd2s, rtol=1e-10)


def test_two_sample_test_dispatches_and_names_bad_input():
    x, y = _gauss(20, 2, 0), _gauss(20, 2, 1)
    assert shift.two_sample_test(x, y, n_permutations=20).test == "median"
    assert shift.two_sample_test(x, y, test="aggregated", n_permutations=20).test == "aggregated"
    for call, match in ((lambda: shift.two_sample_test(x, y, test="mean"), "test: expected one of median"),
                        (lambda: shift.two_sample_test(x, y, test="aggregated", bandwidth=1.0), "bandwidth"),
                        (lambda: shift.aggregated_test(x, y, scales=(0.5, 2.0)), "scales"),
                        (lambda: shift.aggregated_test(x, y, n_permutations=-1), "n_permutations")):
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("k", [1, 3])
def test_stacked_engine_equals_one_kernel_at_a_time(k):
    z = _gauss(30, 2, 7)
    kernels = tuple((0.5 * 2**i,) for i in range(k))
    both = shift.permuted_statistics(z, 12, kernels, 60, 2)  # (K, 61)
    for i, ls in enumerate(kernels):
        one = shift.permuted_statistics(z, 12, (ls,), 60, 2)[0]
        np.testing.assert_allclose(both[i], one, rtol=1e-10)
    assert both.shape == (k, 61)
