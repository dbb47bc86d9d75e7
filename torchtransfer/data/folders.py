"""Image folders and manifests as domains: a safe listing, an inventory by content, and a per-image cache.

A domain folder follows torchvision's ``ImageFolder`` layout, with unlabelled images allowed beside it::

    root/3/a.png, root/7/sub/b.jpg   labelled: the class is the sub-folder's name (classes sorted by name)
    root/c.png                       unlabelled (loose in the folder)

:func:`scan` reads each file once, hashes its bytes (sha256) and stores its decoded, conformed pixels under
``<cache>/images/`` by that hash, streaming one image at a time (memory does not grow with the folder).
The :class:`Inventory` it returns is ordered by content, so file and folder names do not change the data, its
splits or its fingerprint; adding, removing, editing or relabelling an image does.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from torchtransfer.data.datasets import Domain
from torchtransfer.data.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, TooLarge, load_image
from torchtransfer.data.manifest import DataError, inside, read_manifest
from torchtransfer.progress import track

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when decode/conform change what a cached image holds


@dataclass(frozen=True)
class Entry:
    sha256: str
    label: str | None  # class name; None: unlabelled
    path: str  # where it was read (for messages)


@dataclass(frozen=True)
class Inventory:
    """What a folder or manifest holds: entries sorted by (content hash, label), and the files skipped."""

    root: str
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted({e.label for e in self.entries if e.label is not None}))

    @property
    def n_labelled(self) -> int:
        return sum(e.label is not None for e in self.entries)

    @property
    def n_unlabelled(self) -> int:
        return len(self.entries) - self.n_labelled

    @property
    def fingerprint(self) -> str:
        """sha256 over every image's content hash and label (not names, paths or times)."""
        digest = hashlib.sha256()
        for e in self.entries:
            digest.update(f"{e.sha256}:{e.label if e.label is not None else ''}\n".encode())
        return digest.hexdigest()


def _check_link(path: Path, root: Path) -> None:
    if path.is_symlink() and not inside(path, root):
        raise DataError(f"{path}: a symlink to {path.resolve()}, outside the folder {root}; copy the file in "
                        "or point data.*.folder at the real folder")


def _images_under(folder: Path, root: Path) -> list[Path]:
    """Image files anywhere under ``folder`` (symlinked folders are not followed), sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for d in list(dirnames):
            _check_link(here / d, root)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                _check_link(here / name, root)
                found.append(here / name)
    return sorted(found)


def list_folder(root: Path) -> list[tuple[Path, str | None]]:
    """``(file, class or None)`` for every image: loose files unlabelled, class sub-folders labelled."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected images in class sub-folders ({root}/<class>/<image>)")
    found: list[tuple[Path, str | None]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        _check_link(entry, root)
        if entry.is_dir():
            images = _images_under(entry, root)
            if not images:
                raise DataError(f"{entry}: class sub-folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found += [(f, entry.name) for f in images]
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            found.append((entry, None))
    if not found:
        raise DataError(f"{root}: the folder is empty (no images {', '.join(IMAGE_SUFFIXES)}, no class "
                        "sub-folders)")
    return found


def cached_file(cache: Path, sha256: str, channels: int, size: int, resize: str = "stretch") -> Path:
    mode = "" if resize == "stretch" else f"-{resize}"  # stretch keeps the paths cached before data.resize
    return Path(cache) / "images" / f"v{CACHE_VERSION}-{channels}x{size}{mode}" / sha256[:2] / f"{sha256}.npy"


def scan(location: Path, kind: str, cache: Path, channels: int, size: int, max_pixels: int = MAX_PIXELS,
         on_bad: str = "skip", resize: str = "stretch") -> Inventory:
    """List a ``folder`` or ``manifest``, hash every file and cache its pixels (uint8 (channels, size, size)).

    An undecodable or truncated file is skipped and counted (``on_bad="skip"``) or refused (``"error"``); an
    image over ``max_pixels`` is always refused. Raises ``DataError`` naming the path.
    """
    files = read_manifest(location) if kind == "manifest" else list_folder(location)
    entries, skipped = [], []
    with track(f"reading {location}", total=len(files)) as bar:
        for path, label in files:
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            target = cached_file(cache, sha, channels, size, resize)
            try:
                array = load_image(data, channels, size, path, max_pixels, header_only=target.is_file(),
                                   resize=resize)
            except TooLarge as exc:
                raise DataError(str(exc)) from None
            except ImageError as exc:
                if on_bad == "error":
                    raise DataError(f"{exc} (data.on_bad_image: skip would skip it)") from None
                skipped.append(str(path))
                continue
            finally:
                bar.advance()
            if array is not None:
                _save(target, array)
            entries.append(Entry(sha, label, str(path)))
    if skipped:
        log.warning("%s: skipped %d unreadable image(s): %s", location, len(skipped), skipped[:5])
    if not entries:
        raise DataError(f"{location}: none of its {len(files)} image(s) could be read")
    entries.sort(key=lambda e: (e.sha256, e.label or "", e.path))
    return Inventory(str(location), tuple(entries), tuple(skipped))


def _save(target: Path, array: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(target)


def to_domain(inventory: Inventory, classes: tuple[str, ...], cache: Path, channels: int, size: int,
              max_pixels: int = MAX_PIXELS, resize: str = "stretch") -> Domain:
    """The inventory's images (N, channels, size, size) in [0, 1] from the cache, labels indexing ``classes``
    (-1: unlabelled). Filled in place, one image at a time; an image missing from the cache is decoded again."""
    x = torch.empty(len(inventory.entries), channels, size, size)
    for i, e in enumerate(inventory.entries):
        file = cached_file(cache, e.sha256, channels, size, resize)
        array = np.load(file) if file.is_file() else load_image(Path(e.path), channels, size, max_pixels=max_pixels,
                                                                resize=resize)
        x[i] = torch.from_numpy(array).float() / 255.0
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[e.label] if e.label is not None else -1 for e in inventory.entries], dtype=torch.int64)
    return Domain(inventory.root, x, y)
