import numpy as np
import pytest
import torch

from torchtransfer import shift


def _gauss(n, d, seed, mean=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + mean


def test_same_distribution_is_not_significant():
    res = shift.permutation_test(_gauss(150, 5, 0), _gauss(150, 5, 1), n_permutations=200, seed=0)
    assert res.p_value >= 0.05
    assert res.n_permutations == 200 and (res.n_source, res.n_target) == (150, 150)


def test_shifted_gaussians_are_significant():
    res = shift.permutation_test(_gauss(150, 5, 0), _gauss(120, 5, 1, mean=0.5), n_permutations=200, seed=0)
    assert res.p_value == pytest.approx(1 / 201)
    assert res.mmd2 > 0.02


def test_symmetric_and_seeded():
    x, y = _gauss(80, 3, 0), _gauss(60, 3, 1, mean=0.3)
    a = shift.permutation_test(x, y, n_permutations=100, seed=4)
    assert a == shift.permutation_test(x, y, n_permutations=100, seed=4)
    assert shift.mmd2_unbiased(x, y, 1.0) == pytest.approx(shift.mmd2_unbiased(y, x, 1.0))


def test_vectorised_null_matches_a_loop_over_permutations():
    """The batched statistic equals mmd2_unbiased recomputed on each permuted split."""
    x, y = _gauss(12, 2, 0), _gauss(9, 2, 1, mean=0.4)
    z = torch.cat([x, y]).double()
    l = 1.3
    k = shift.gaussian_kernel(z, z, l)
    observed = shift.mmd2_unbiased(x, y, l)
    assert observed == pytest.approx(float(shift._mmd2_from_sums(
        k[:12, :12].sum(), k[12:, 12:].sum(), k[:12, 12:].sum(), 12, 9)))
    res = shift.permutation_test(x, y, n_permutations=30, bandwidth=l, seed=2, chunk=7)
    gen = torch.Generator().manual_seed(2)
    nulls = []
    for start in range(0, 30, 7):
        b = min(7, 30 - start)
        order = torch.argsort(torch.rand(b, 21, generator=gen), dim=1)
        for row in order:
            nulls.append(shift.mmd2_unbiased(z[row[:12]], z[row[12:]], l))
    expected = (1 + sum(v >= observed for v in nulls)) / 31
    assert res.p_value == pytest.approx(expected)


def test_unbiased_estimate_is_near_zero_under_the_null():
    values = [shift.mmd2_unbiased(_gauss(100, 4, s), _gauss(100, 4, 100 + s)) for s in range(10)]
    assert abs(np.mean(values)) < 0.01


def test_images_numpy_and_median_heuristic():
    imgs = np.random.default_rng(0).random((20, 1, 4, 4))
    assert shift.as_matrix(imgs).shape == (20, 16)
    z = torch.tensor([[0.0], [1.0], [3.0]])
    assert shift.median_bandwidth(z) == pytest.approx(2.0**0.5)
    with pytest.raises(ValueError, match="identical"):
        shift.median_bandwidth(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="different dimensions"):
        shift.permutation_test(torch.zeros(5, 2), torch.zeros(5, 3))
