"""Seeded mini-batches from an in-memory ``Domain`` (fast path: tensor indexing) or any map-style
``torch.utils.data.Dataset`` of ``(image, label)`` (a ``DataLoader`` with a seeded generator).

Either way the order comes from the ``torch.Generator`` passed in, so one seed gives one sequence.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from torchtransfer.data.datasets import Domain

Data = Domain | Dataset


def labelled(train: Data, target: Data | None) -> Data:
    """Source images with a label plus any labelled target images (labels of -1 are hidden)."""
    if not isinstance(train, Domain):
        if target is not None and isinstance(target, Domain) and bool((target.y >= 0).any()):
            raise ValueError("labelled target images can only be mixed into an in-memory Domain source")
        return train
    parts = [train] + ([target] if isinstance(target, Domain) else [])
    x = torch.cat([d.x[d.y >= 0] for d in parts])
    y = torch.cat([d.y[d.y >= 0] for d in parts])
    if len(y) == 0:
        raise ValueError("no labelled training images: every label is hidden (-1)")
    return Domain(train.name, x, y)


def n_batches(n: int, batch_size: int) -> int:
    """Steps per epoch over ``n`` items: full batches plus a last partial batch of at least 2 items."""
    return n // batch_size + (1 if n % batch_size >= 2 else 0)


def epoch_batches(data: Data, batch_size: int, gen: torch.Generator,
                  pin: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """One shuffled pass as ``(x (B, C, H, W), y (B,))``; a trailing batch of one image is dropped."""
    if isinstance(data, Domain):
        order = torch.randperm(len(data), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            if len(idx) >= 2:
                yield data.x[idx], data.y[idx]
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, pin_memory=pin,
                        generator=torch.Generator().manual_seed(seed))
    for x, y in loader:
        if len(y) >= 2:
            yield x, torch.as_tensor(y)


class _Indexed(Dataset):
    """``(image, position)`` of a map-style dataset: its labels are never read."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.data[i][0], i


def indexed_batches(data: Data, batch_size: int, gen: torch.Generator,
                    pin: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """One shuffled pass as ``(x (B, C, H, W), positions (B,))``, the same order ``epoch_batches`` draws
    from ``gen``; labels are never read."""
    if isinstance(data, Domain):
        order = torch.randperm(len(data), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            if len(idx) >= 2:
                yield data.x[idx], idx
        return
    yield from epoch_batches(_Indexed(data), batch_size, gen, pin)


def endless(data: Data, batch_size: int, gen: torch.Generator, pin: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Target ``(images (B, C, H, W), positions (B,))`` forever, reshuffled at every pass; labels are never
    read."""
    while True:
        yield from indexed_batches(data, batch_size, gen, pin)


def in_order(data: Data, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Every item once, in order (for evaluation and the feature cache)."""
    if isinstance(data, Domain):
        for start in range(0, len(data), batch_size):
            yield data.x[start: start + batch_size], data.y[start: start + batch_size]
        return
    for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
        yield x, torch.as_tensor(y)
