"""The data's checks before anything runs, and what they learn: split sizes (counts or fractions) against
what each domain holds, and, for folders and manifests, a full :func:`folders.scan` (every image read once,
its pixels cached) so that a bad file stops the run before an MLflow run or a study exists.

Split sizes: an int is a count, a float in (0, 1] a fraction. In a fully labelled domain (the built-in sets,
a source folder) they are shares of all its images. In a domain with unlabelled images (a target folder with
loose files) ``val`` and ``test`` come from its labelled images and ``train`` from the rest (the unlabelled
images plus labelled ones left over), so fractions are shares of those pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torchtransfer.data.datasets import DOMAIN_SIZES
from torchtransfer.data.folders import Inventory, scan
from torchtransfer.data.images import MAX_PIXELS
from torchtransfer.data.manifest import DataError
from torchtransfer.names import BUILTIN_CLASSES

if TYPE_CHECKING:
    from torchtransfer.config import DataConfig, DomainConfig

SIDES = ("source", "target")


@dataclass(frozen=True)
class DataScan:
    """What the checks found: each folder/manifest domain's inventory (None for a built-in set) and the
    class names (the source's, sorted; a model's output i is class ``classes[i]``)."""

    source: Inventory | None
    target: Inventory | None
    classes: tuple[str, ...]

    def content(self) -> dict[str, str | None]:
        """Content fingerprints of the scanned domains (None: built-in)."""
        return {side: inv.fingerprint if inv else None for side, inv in (("source", self.source),
                                                                          ("target", self.target))}


def where(dom: DomainConfig) -> str:
    return dom.name or dom.folder or dom.manifest


def count(value: int | float, n: int) -> int:
    """A split size as a number of images: an int as is, a fraction of ``n`` rounded down."""
    return value if isinstance(value, int) else int(value * n)


def split_sizes(dom: DomainConfig, n_labelled: int, n_unlabelled: int = 0) -> dict[str, int]:
    """The split sizes of a domain holding ``n_labelled`` + ``n_unlabelled`` images (see the module doc).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> split_sizes(NS(train=1.0, val=0, test=0.5), n_labelled=40, n_unlabelled=200)
        {'train': 220, 'val': 0, 'test': 20}
    """
    if n_unlabelled == 0:
        return {"train": count(dom.train, n_labelled), "val": count(dom.val, n_labelled),
                "test": count(dom.test, n_labelled)}
    val, test = count(dom.val, n_labelled), count(dom.test, n_labelled)
    return {"train": count(dom.train, n_unlabelled + max(n_labelled - val - test, 0)), "val": val, "test": test}


def size_problems(cfg: DataConfig, counts: dict[str, tuple[int, int]] | None = None) -> list[str]:
    """What is wrong with the split sizes, one message per problem naming the keys (empty: nothing).
    ``counts``: ``{side: (labelled, unlabelled)}`` of scanned domains; built-in sets use ``DOMAIN_SIZES``."""
    problems = []
    for side in SIDES:
        dom = getattr(cfg, side)
        if counts and side in counts:
            n_lab, n_unl = counts[side]
        elif dom.name:
            n_lab, n_unl = DOMAIN_SIZES[dom.name], 0
        else:
            continue
        s, at = split_sizes(dom, n_lab, n_unl), where(dom)
        if n_unl == 0 and sum(s.values()) > n_lab:
            problems.append(f"data.{side}.train + data.{side}.val + data.{side}.test = {s['train']} + {s['val']} "
                            f"+ {s['test']} = {sum(s.values())} images, but {at} holds {n_lab}")
        elif n_unl and s["val"] + s["test"] > n_lab:
            problems.append(f"data.{side}.val + data.{side}.test = {s['val']} + {s['test']} labelled images, but "
                            f"{at} holds {n_lab} labelled (images in class sub-folders feed val and test)")
        elif n_unl and s["train"] > n_unl + n_lab - s["val"] - s["test"]:
            problems.append(f"data.{side}.train = {s['train']} images, but {at} holds "
                            f"{n_unl + n_lab - s['val'] - s['test']} outside val and test")
        required = ("train", "val", "test") if side == "source" else ("train", "test")
        hint = " (val and test are drawn from its labelled images, those in class sub-folders)" if n_unl else ""
        problems += [f"data.{side}.{part} = {getattr(dom, part)} is 0 images of {at}, which holds {n_lab} labelled "
                     f"and {n_unl} unlabelled{hint if part != 'train' else ''}"
                     for part in required if s[part] == 0 and getattr(dom, part) != 0]
    return problems


def scan_data(cfg: DataConfig, channels: int, size: int, cache: Path, num_classes: int | None = None) -> DataScan:
    """Scan the folder/manifest domains and check everything about the data; raise ``DataError`` listing
    every problem, each naming the key or path."""
    inventories: dict[str, Inventory | None] = {}
    problems: list[str] = []
    max_pixels = getattr(cfg, "max_pixels", MAX_PIXELS)
    for side in SIDES:
        dom = getattr(cfg, side)
        inventories[side] = None
        if dom.name is None:
            kind = "folder" if dom.folder else "manifest"
            try:
                inventories[side] = scan(Path(where(dom)).expanduser(), kind, cache, channels, size, max_pixels,
                                         cfg.on_bad_image, getattr(cfg, "resize", "stretch"))
            except DataError as exc:
                problems.append(f"data.{side}.{kind}: {exc}")
    if problems:
        raise DataError("\n".join(problems))
    source, target = inventories["source"], inventories["target"]
    classes = source.classes if source else BUILTIN_CLASSES
    if source and source.n_labelled == 0:
        problems.append(f"data.source: {source.root} has no class sub-folders; the source must be labelled "
                        f"({source.root}/<class>/<image>)")
    elif source and source.n_unlabelled:
        problems.append(f"data.source: {source.root} holds {source.n_unlabelled} loose image(s) with no class; "
                        "a source is labelled: move them into class sub-folders")
    target_classes = target.classes if target else BUILTIN_CLASSES
    if not problems and target_classes and set(target_classes) != set(classes):
        problems.append(f"source classes {list(classes)} ({where(cfg.source)}) differ from target classes "
                        f"{list(target_classes)} ({where(cfg.target)})")
    if not problems and num_classes is not None and num_classes != len(classes):
        problems.append(f"model.num_classes = {num_classes}, but the source {where(cfg.source)} has "
                        f"{len(classes)} classes {list(classes)[:10]}; set it to {len(classes)} or null (derived)")
    counts = {side: (inv.n_labelled, inv.n_unlabelled) for side, inv in inventories.items() if inv}
    problems = problems or size_problems(cfg, counts)  # sizes only mean something once the labels are right
    if problems:
        raise DataError("\n".join(problems))
    return DataScan(source, target, classes)
