"""The source/target ``DomainPair``: deterministic stratified splits, hidden target labels, a fingerprint.

Protocol (ADDA, CVPR 2017, by default): 2,000 labelled source training images, 1,800 target training images
whose labels are hidden from training, a small labelled target validation split for model selection, and a
held-out target test split that only evaluation reads.

A domain is a built-in set or a folder/manifest (``torchtransfer.data.folders``); either way its images are
brought to the model's input, (channels, size, size), by ``images.conform``, the function the served model
calls too. A domain with unlabelled images draws ``val`` and ``test`` from its labelled ones
(``checks.split_sizes``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torchtransfer.config import DataConfig

from torchtransfer.data.checks import BUILTIN_CLASSES, DataScan, scan_data, size_problems, split_sizes
from torchtransfer.data.datasets import Domain, default_cache_dir, load_domain
from torchtransfer.data.folders import to_domain
from torchtransfer.data.images import conform
from torchtransfer.locking import private_tmp

__all__ = ["SPLITS", "DomainPair", "build_pair", "fingerprint", "hide_labels", "size_problems", "stratified_split"]

SPLITS = ("source_train", "source_val", "source_test", "target_train", "target_val", "target_test")


@dataclass(frozen=True)
class DomainPair:
    """Six splits, each a ``Domain`` of (N, C, H, W) images; ``target_train.y`` is -1 where hidden; label i is
    class ``classes[i]``."""

    source_train: Domain
    source_val: Domain
    source_test: Domain
    target_train: Domain
    target_val: Domain
    target_test: Domain
    fingerprint: str
    classes: tuple[str, ...] = BUILTIN_CLASSES

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}

    def save(self, path: Path) -> Path:
        """Write all splits as one tensor file (readable with ``weights_only=True``); atomic."""
        payload = {"fingerprint": self.fingerprint, "classes": list(self.classes)}
        for name in SPLITS:
            split = getattr(self, name)
            payload[f"{name}.name"] = split.name
            payload[f"{name}.x"] = split.x
            payload[f"{name}.y"] = split.y
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = private_tmp(path)
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> DomainPair:
        payload = torch.load(path, weights_only=True)
        splits = {n: Domain(payload[f"{n}.name"], payload[f"{n}.x"], payload[f"{n}.y"]) for n in SPLITS}
        return cls(**splits, fingerprint=payload["fingerprint"],
                   classes=tuple(payload.get("classes", BUILTIN_CLASSES)))


def stratified_split(labels: Tensor, sizes: dict[str, int], seed: int) -> dict[str, Tensor]:
    """Disjoint, class-stratified index sets of the requested sizes, fixed by ``seed``.

    Each split takes ``size / N`` of every class (largest remainders fill the rounding gap), so class
    proportions match the full domain. Raises if the sizes add up to more than the domain holds.

    Example:
        >>> y = torch.arange(100) % 4
        >>> parts = stratified_split(y, {"train": 40, "test": 20}, seed=0)
        >>> [len(parts["train"]), len(parts["test"])], torch.bincount(y[parts["train"]]).tolist()
        ([40, 20], [10, 10, 10, 10])
    """
    total = sum(sizes.values())
    if total > len(labels):
        raise ValueError(f"split sizes {sizes} need {total} images but the domain holds {len(labels)}")
    gen = torch.Generator().manual_seed(seed)
    pools = {int(c): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}
    pools = {c: idx[torch.randperm(len(idx), generator=gen)] for c, idx in pools.items()}
    taken = dict.fromkeys(pools, 0)
    out: dict[str, Tensor] = {}
    for name, size in sizes.items():
        quota = {c: size * len(idx) / len(labels) for c, idx in pools.items()}
        counts = {c: min(int(q), len(pools[c]) - taken[c]) for c, q in quota.items()}
        while (short := size - sum(counts.values())) > 0:  # largest remainders; again while classes run out
            spare = sorted((c for c in pools if taken[c] + counts[c] < len(pools[c])),
                           key=lambda c: (-(quota[c] - counts[c]), c))
            if not spare:
                break
            for c in spare[:short]:
                counts[c] += 1
        index = torch.cat([pools[c][taken[c]: taken[c] + counts[c]] for c in sorted(pools)])
        for c in pools:
            taken[c] += counts[c]
        if len(index) != size:
            raise ValueError(f"split {name!r}: could only stratify {len(index)} of {size} images")
        out[name] = index[torch.randperm(len(index), generator=gen)]
    return out


def hide_labels(y: Tensor, keep_fraction: float, seed: int) -> Tensor:
    """A copy of ``y`` where all but ``round(keep_fraction·L)`` of its L labelled entries (a seeded choice) are
    set to -1; entries that are -1 already stay so."""
    labelled = torch.nonzero(y >= 0).flatten()
    keep = round(keep_fraction * len(labelled))
    hidden = y.clone()
    order = torch.randperm(len(labelled), generator=torch.Generator().manual_seed(seed))
    hidden[labelled[order[keep:]]] = -1
    return hidden


def fingerprint(splits: dict[str, Domain], indices: dict[str, Tensor], content: tuple[str, ...] = ()) -> str:
    """sha256 over every split's images and labels, the index sets that chose them and ``content`` (the
    folder domains' content fingerprints: file bytes and labels)."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(splits[name].x.contiguous().numpy().tobytes())
        digest.update(splits[name].y.contiguous().numpy().tobytes())
    for name in sorted(indices):
        digest.update(indices[name].numpy().astype("int64").tobytes())
    for item in content:
        digest.update(item.encode())
    return digest.hexdigest()


def split_indices(y: Tensor, sizes: dict[str, int], seed: int) -> dict[str, Tensor]:
    """Index sets train/val/test: stratified over the whole domain when every image is labelled; else val
    and test stratified over the labelled images, and train from the rest (unlabelled as a stratum of its own)."""
    if bool((y >= 0).all()):
        return stratified_split(y, sizes, seed)
    labelled = torch.nonzero(y >= 0).flatten()
    parts = {k: labelled[v] for k, v in stratified_split(y[labelled], {"val": sizes["val"], "test": sizes["test"]},
                                                         seed).items()}
    free = torch.ones(len(y), dtype=torch.bool)
    free[torch.cat([parts["val"], parts["test"]])] = False
    rest = torch.nonzero(free).flatten()
    parts["train"] = rest[stratified_split(y[rest], {"train": sizes["train"]}, seed)["train"]]
    return {k: parts[k] for k in ("train", "val", "test")}


def _domain(side: str, cfg: DataConfig, scan: DataScan, cache_dir: Path | None, shape: tuple[int, int]) -> Domain:
    """One side's whole domain at ``shape`` = (channels, size)."""
    inventory = getattr(scan, side)
    if inventory is None:
        return load_domain(getattr(cfg, side).name, cache_dir)  # conformed per split (smaller)
    return to_domain(inventory, scan.classes, cache_dir or default_cache_dir(), *shape, cfg.max_pixels, cfg.resize)


def build_pair(cfg: DataConfig, seed: int, cache_dir: Path | None = None, shape: tuple[int, int] = (1, 28),
               scan: DataScan | None = None) -> DomainPair:
    """Load both domains at ``shape`` = (channels, size), split them (stratified, seeded) and hide the
    unlabelled target labels. Folder/manifest domains need their ``scan`` (``checks.scan_data``; run here
    when not given)."""
    if scan is None:
        scan = scan_data(cfg, *shape, cache_dir or default_cache_dir())
    splits: dict[str, Domain] = {}
    indices: dict[str, Tensor] = {}
    classes: dict[str, set[int]] = {}
    for side in ("source", "target"):
        dom_cfg, domain = getattr(cfg, side), _domain(side, cfg, scan, cache_dir, shape)
        classes[side] = set(domain.y[domain.y >= 0].tolist())  # the domain's labelled classes (no split consulted)
        n_labelled = int((domain.y >= 0).sum())
        sizes = split_sizes(dom_cfg, n_labelled, len(domain) - n_labelled)
        for part, index in split_indices(domain.y, sizes, seed).items():
            indices[f"{side}_{part}"] = index
            split = domain.subset(index)
            splits[f"{side}_{part}"] = Domain(split.name, conform(split.x, *shape, cfg.resize), split.y)
    if classes["target"] and classes["source"] != classes["target"]:  # an all-unlabelled target has no class set
        raise ValueError(f"source classes {sorted(classes['source'])} differ from target classes "
                         f"{sorted(classes['target'])}")
    for side, dom_cfg in (("source", cfg.source), ("target", cfg.target)):  # train_labelled: labels kept
        train = splits[f"{side}_train"]
        splits[f"{side}_train"] = Domain(train.name, train.x, hide_labels(train.y, dom_cfg.train_labelled, seed))
    content = tuple(c for c in scan.content().values() if c)
    return DomainPair(**splits, fingerprint=fingerprint(splits, indices, content), classes=scan.classes)
