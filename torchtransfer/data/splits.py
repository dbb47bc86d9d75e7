"""The source/target ``DomainPair``: deterministic stratified splits, hidden target labels, a fingerprint.

Protocol (ADDA, CVPR 2017, by default): 2,000 labelled source training images, 1,800 target training images
whose labels are hidden from training, a small labelled target validation split for model selection, and a
held-out target test split that only evaluation reads.
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

from torchtransfer.data.datasets import DOMAIN_SIZES, Domain, load_domain

SPLITS = ("source_train", "source_val", "source_test", "target_train", "target_val", "target_test")


@dataclass(frozen=True)
class DomainPair:
    """Six splits, each a ``Domain`` of (N, 1, 28, 28) images; ``target_train.y`` is -1 where hidden."""

    source_train: Domain
    source_val: Domain
    source_test: Domain
    target_train: Domain
    target_val: Domain
    target_test: Domain
    fingerprint: str

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}

    def save(self, path: Path) -> Path:
        """Write all splits as one tensor file (readable with ``weights_only=True``); atomic."""
        payload = {"fingerprint": self.fingerprint}
        for name in SPLITS:
            split = getattr(self, name)
            payload[f"{name}.name"] = split.name
            payload[f"{name}.x"] = split.x
            payload[f"{name}.y"] = split.y
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> DomainPair:
        payload = torch.load(path, weights_only=True)
        splits = {n: Domain(payload[f"{n}.name"], payload[f"{n}.x"], payload[f"{n}.y"]) for n in SPLITS}
        return cls(**splits, fingerprint=payload["fingerprint"])


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
        spare = sorted((c for c in pools if taken[c] + counts[c] < len(pools[c])),
                       key=lambda c: (-(quota[c] - counts[c]), c))
        for c in spare[: size - sum(counts.values())]:
            counts[c] += 1
        index = torch.cat([pools[c][taken[c]: taken[c] + counts[c]] for c in sorted(pools)])
        for c in pools:
            taken[c] += counts[c]
        if len(index) != size:
            raise ValueError(f"split {name!r}: could only stratify {len(index)} of {size} images")
        out[name] = index[torch.randperm(len(index), generator=gen)]
    return out


def hide_labels(y: Tensor, keep_fraction: float, seed: int) -> Tensor:
    """A copy of ``y`` where all but ``round(keep_fraction·N)`` labels (seeded choice) are set to -1."""
    keep = round(keep_fraction * len(y))
    hidden = y.clone()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    hidden[order[keep:]] = -1
    return hidden


def fingerprint(splits: dict[str, Domain], indices: dict[str, Tensor]) -> str:
    """sha256 over every split's images and labels and the index sets that chose them."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(splits[name].x.contiguous().numpy().tobytes())
        digest.update(splits[name].y.contiguous().numpy().tobytes())
    for name in sorted(indices):
        digest.update(indices[name].numpy().astype("int64").tobytes())
    return digest.hexdigest()


def build_pair(cfg: DataConfig, seed: int, cache_dir: Path | None = None) -> DomainPair:
    """Load both domains, split them (stratified, seeded) and hide the unlabelled target labels."""
    splits: dict[str, Domain] = {}
    indices: dict[str, Tensor] = {}
    classes: dict[str, set[int]] = {}
    for side, dom_cfg in (("source", cfg.source), ("target", cfg.target)):
        domain = load_domain(dom_cfg.name, cache_dir)
        classes[side] = set(domain.y[domain.y >= 0].tolist())  # the domain's class set (no split is consulted)
        parts = stratified_split(
            domain.y, {"train": dom_cfg.train, "val": dom_cfg.val, "test": dom_cfg.test}, seed)
        for part, index in parts.items():
            indices[f"{side}_{part}"] = index
            splits[f"{side}_{part}"] = domain.subset(index)
    if classes["source"] != classes["target"]:
        raise ValueError(f"source classes {sorted(classes['source'])} differ from target classes "
                         f"{sorted(classes['target'])}")
    for side, dom_cfg in (("source", cfg.source), ("target", cfg.target)):  # train_labelled: labels kept
        train = splits[f"{side}_train"]
        splits[f"{side}_train"] = Domain(train.name, train.x, hide_labels(train.y, dom_cfg.train_labelled, seed))
    return DomainPair(**splits, fingerprint=fingerprint(splits, indices))


def size_problems(cfg: DataConfig) -> list[str]:
    """What is wrong with the split sizes, one message per domain naming the keys (empty: nothing), checked
    against ``datasets.DOMAIN_SIZES`` before any data is loaded."""
    problems = []
    for side, dom_cfg in (("source", cfg.source), ("target", cfg.target)):
        held = DOMAIN_SIZES[dom_cfg.name]
        need = dom_cfg.train + dom_cfg.val + dom_cfg.test
        if need > held:
            problems.append(f"data.{side}.train + data.{side}.val + data.{side}.test = {dom_cfg.train} + "
                            f"{dom_cfg.val} + {dom_cfg.test} = {need} images, but {dom_cfg.name} holds {held}")
    return problems

