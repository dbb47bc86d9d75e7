"""The one image reader: domain folders and manifests, the served model's ``predict`` and the shift CLI all read
through it, so they accept the same files (``IMAGE_SUFFIXES``) and convert them alike.

An image reaches a backbone in two steps, the same in training and in the logged model:

1. :func:`decode`: a file → uint8 (H, W, C), C = 1 (grayscale, 16-bit scaled to 8) or 3 (RGB). Palette images
   are expanded; transparency is composited over black (alpha premultiplied), so a transparent pixel is 0.
   Images over ``max_pixels`` are refused before their pixels are decoded (decompression bombs); truncated
   or undecodable files raise ``ImageError`` naming the path.
2. :func:`conform`: float (N, C, H, W) in [0, 1] → (N, channels, size, size): RGB → grayscale by ITU-R 601
   luma, grayscale → RGB by repetition, then a bilinear, antialiased resize to ``size``×``size`` (no crop:
   a non-square image is stretched). ``registry.serving.ServableModel.preprocess`` calls it too.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from torchtransfer.names import MAX_PIXELS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LUMA = (0.299, 0.587, 0.114)
RESIZE_MODES = ("stretch", "center_crop")  # data.resize


class ImageError(ValueError):
    """A file that cannot be used as an image: undecodable, truncated, or over the pixel limit."""


class TooLarge(ImageError):
    """An image over the pixel limit (refused before its pixels are decoded)."""


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and its sub-folders when ``recursive``), sorted by path."""
    found = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    files = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def decode(source: Path | bytes, name: str | Path = "", max_pixels: int = MAX_PIXELS,
           header_only: bool = False) -> np.ndarray | None:
    """An image file (a path, or its bytes with ``name`` for messages) → uint8 (H, W, 1) or (H, W, 3);
    ``header_only``: check the pixel limit only, decode nothing and return None.

    Example:
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGBA", (5, 4), (200, 100, 0, 0)).save(buf, "PNG")
        >>> decode(buf.getvalue()).shape, int(decode(buf.getvalue()).max())  # fully transparent → black
        ((4, 5, 3), 0)
    """
    from PIL import Image, UnidentifiedImageError

    name = name or source
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            w, h = image.size
            if w * h > max_pixels:
                raise TooLarge(f"{name}: {w}×{h} = {w * h:,} pixels is over the limit of {max_pixels:,} "
                               "(data.max_pixels; a decompression bomb?)")
            return None if header_only else _to_array(image)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"{name}: over the pixel limit of {max_pixels:,} (data.max_pixels; {exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (not a format PIL recognises)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{name}: not a readable image ({exc})") from None


def _to_array(image) -> np.ndarray:
    """A PIL image of any mode → uint8 (H, W, C), C ∈ {1, 3}."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale → 8 bits
        return (np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).round().astype(np.uint8)[..., None]
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        array = np.asarray(image, dtype=np.float32)
        premultiplied = array[..., :-1] * (array[..., -1:] / 255.0)  # composite over black
        return premultiplied.round().astype(np.uint8)
    if image.mode not in ("L", "RGB"):  # 1, F, CMYK, YCbCr, LAB, HSV, ...
        image = image.convert("L" if image.mode in ("1", "F") else "RGB")
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def conform(x: Tensor, channels: int, size: int, resize: str = "stretch") -> Tensor:
    """Float images (N, C, H, W) in [0, 1], C ∈ {1, 3} → (N, ``channels``, ``size``, ``size``).

    ``resize`` (``data.resize``) for H ≠ W: ``stretch`` resizes (H, W) to (size, size); ``center_crop`` first
    keeps the centred min(H, W) square, so the content keeps its aspect ratio.

    Example:
        >>> conform(torch.ones(2, 3, 40, 30), channels=1, size=28).shape
        torch.Size([2, 1, 28, 28])
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    h, w = x.shape[-2:]
    if resize == "center_crop" and h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[..., top: top + s, left: left + s]  # (N, C, s, s)
    if x.shape[1] != channels:
        if x.shape[1] == 3 and channels == 1:
            x = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)  # (N, channels, H, W)
        else:
            raise ValueError(f"images have {x.shape[1]} channels; expected 1 or 3 (this model takes {channels})")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def load_image(source: Path | bytes, channels: int, size: int, name: str | Path = "",
               max_pixels: int = MAX_PIXELS, header_only: bool = False, resize: str = "stretch") -> np.ndarray | None:
    """A file → uint8 (``channels``, ``size``, ``size``): :func:`decode` then :func:`conform` (``header_only``:
    the pixel-limit check alone, None back)."""
    array = decode(source, name, max_pixels, header_only)  # (H, W, C)
    if array is None:
        return None
    x = torch.tensor(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0  # (1, C, H, W)
    return (conform(x, channels, size, resize)[0] * 255.0).round().to(torch.uint8).numpy()


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
