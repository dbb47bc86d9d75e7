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
