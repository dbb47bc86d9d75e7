"""The one image reader: the shift CLI, the served model's ``predict`` and image folders all read through it,
so they accept the same files (``IMAGE_SUFFIXES``) and convert them alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and its sub-folders when ``recursive``), sorted by path."""
    found = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    files = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def read_image(path: Path, mode: str = "L", size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8, (H, W) for mode ``L`` or (H, W, C); resized to ``size`` = (W, H) when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            return np.asarray(image.resize(size) if size else image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None


def read_folder(folder: Path, mode: str = "L", size: tuple[int, int] | None = None,
                recursive: bool = False) -> tuple[list[Path], np.ndarray]:
    """Files and a batch (N, H, W[, C]) uint8 of every image in ``folder``; all of one size (or ``size``)."""
    files = image_files(folder, recursive)
    arrays = []
    for f in files:
        array = read_image(f, mode, size)
        if arrays and array.shape != arrays[0].shape:
            raise ValueError(f"{f}: size {array.shape[1]}×{array.shape[0]} differs from {files[0].name}'s "
                             f"{arrays[0].shape[1]}×{arrays[0].shape[0]}; resize them to one size (--size W H)")
        arrays.append(array)
    return files, np.stack(arrays)


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (and labels, when an ``.npz`` holds ``y``) from an ``.npy`` array or an ``.npz`` archive (its
    ``x`` or ``images`` array, else its only array)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.keys())
            keys = [k for k in ("x", "images") if k in names] or names  # x first
            if not keys or (len(keys) > 1 and keys == names):
                raise ValueError(f"{path}: holds arrays {names}; name the images 'x' (and labels 'y')")
            return archive[keys[0]], (archive["y"] if "y" in names else None)
    raise ValueError(f"{path}: expected a folder of images, an .npy or an .npz file")
