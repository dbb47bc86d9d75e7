"""The servable model: a backbone with its preprocessing inside, so raw images go in and probabilities come out.

``ServableModel`` accepts what a user has at hand, not what the backbone was trained on:

| input | handled as |
| --- | --- |
| dtype ``uint8`` (or any integer dtype, e.g. int64 from JSON), values 0..255 | divided by 255 |
| a float dtype, values in [0, 1] | as is (values outside [0, 1] are an error, not silently clipped) |
| shape (N, H, W) | one channel |
| shape (N, C, H, W), C = 1 or 3 | RGB → grayscale (ITU-R 601 luma) or grayscale → RGB as the backbone needs |

then resizes (bilinear, antialiased) to the backbone's ``input_size``, normalises with ``(x - mean) / std`` and
returns class probabilities. Channels and size are matched by ``torchtransfer.data.images.conform``, the function
that brought the training images to the backbone; image files are read by :func:`read_images` through the same
reader as a domain folder. Everything needed to rebuild it is in ``spec()``, a plain dict, so a saved servable needs
``torch.load(weights_only=True)`` and this module, nothing else from training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from torchtransfer.data import folders, images
from torchtransfer.data.images import conform
from torchtransfer.models import BACKBONES


class ServableModel(nn.Module):
    """``backbone`` wrapped with input conversion, resize, channel matching and normalisation.

    Shape:
        - Input: (N, H, W) or (N, C, H, W) with C ∈ {1, 3}; uint8/integer in 0..255 or float in [0, 1]
        - Output of ``forward``: (N, num_classes) probabilities (softmax of the backbone's logits)
    """

    def __init__(self, backbone: nn.Module, backbone_name: str, num_classes: int, input_size: int = 28,
                 in_channels: int = 1, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,),
                 class_names: Sequence[str] | None = None, resize: str = "stretch") -> None:
        super().__init__()
        self.resize = resize  # data.resize of the training images: stretch | center_crop
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean {tuple(mean)} and std {tuple(std)} need one value per channel ({in_channels})")
        self.backbone = backbone.eval()
        self.backbone_name, self.num_classes = backbone_name, num_classes
        self.input_size, self.in_channels = input_size, in_channels
        self.class_names = [str(c) for c in (class_names or range(num_classes))]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def preprocess(self, images: Tensor | np.ndarray) -> Tensor:
        """Raw images → the backbone's input (N, in_channels, input_size, input_size), float32, normalised."""
        x = conform(as_unit_float(images), self.in_channels, self.input_size, self.resize)  # (N, C, S, S) in [0, 1]
        return (x.to(self.mean.device) - self.mean) / self.std

    def forward(self, images: Tensor | np.ndarray) -> Tensor:
        return torch.softmax(self.backbone(self.preprocess(images)), dim=1)

    @torch.no_grad()
    def predict(self, images: Tensor | np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, num_classes) float32 and labels (N,) int64, in batches of ``batch_size``."""
        self.eval()
        n = len(images)
        probs = [self(images[i: i + batch_size]).cpu() for i in range(0, n, batch_size)]
        p = torch.cat(probs).numpy() if probs else np.zeros((0, self.num_classes), np.float32)
        return p.astype(np.float32), p.argmax(axis=1).astype(np.int64)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this model: plain values and the backbone's state dict."""
        return {"backbone": self.backbone_name, "num_classes": self.num_classes, "input_size": self.input_size,
                "in_channels": self.in_channels, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist(), "class_names": list(self.class_names), "resize": self.resize,
                "state_dict": self.backbone.state_dict()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ServableModel:
        if spec["backbone"] not in BACKBONES:
            raise ValueError(f"servable names backbone {spec['backbone']!r}; this torchtransfer knows "
                             f"{sorted(BACKBONES)}")
        backbone = BACKBONES[spec["backbone"]](num_classes=spec["num_classes"], pretrained=False)
        backbone.load_state_dict(spec["state_dict"])
        return cls(backbone, spec["backbone"], spec["num_classes"], spec["input_size"], spec["in_channels"],
                   spec["mean"], spec["std"], spec["class_names"], spec.get("resize", "stretch"))

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.spec(), path)
        return path

    @classmethod
    def load(cls, path: Path) -> ServableModel:
        return cls.from_spec(torch.load(path, weights_only=True, map_location="cpu"))


def servable_for(model: nn.Module, backbone_name: str, num_classes: int, image_shape: Sequence[int],
                 class_names: Sequence[str] | None = None, resize: str = "stretch") -> ServableModel:
    """Wrap a trained ``model`` for serving; ``image_shape`` = (C, H, W) of the images it was trained on (in
    [0, 1]; a backbone that normalises further does so itself), so served images are resized to (H, W);
    ``class_names[i]`` names output i (default ``"0"``, ``"1"``, ...); ``resize``: ``data.resize`` of those images."""
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"servable models take square inputs; training images were {h}×{w}")
    return ServableModel(model.cpu(), backbone_name, num_classes, input_size=h, in_channels=c,
                         mean=(0.0,) * c, std=(1.0,) * c, class_names=class_names, resize=resize)


def as_unit_float(images: Tensor | np.ndarray) -> Tensor:
    """uint8/integer 0..255 or float [0, 1], (N, H, W) or (N, C, H, W) → float32 (N, C, H, W) in [0, 1].

    Example:
        >>> as_unit_float(np.full((2, 4, 4), 255, np.uint8)).shape
        torch.Size([2, 1, 4, 4])
        >>> round(float(as_unit_float(np.full((1, 2, 2), 51)).max()), 6)  # int64, e.g. from JSON: also 0..255
        0.2
    """
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"images must be uint8 (0..255) or float in [0, 1]; got dtype {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(1)  # (N, 1, H, W)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W); got shape {tuple(x.shape)}")
    if x.numel() == 0:
        return x.float()
    lo, hi = float(x.min()), float(x.max())
    if not x.is_floating_point():
        if lo < 0 or hi > 255:
            raise ValueError(f"integer images must hold 0..255; got values in [{lo}, {hi}]")
        return x.float() / 255.0
    if not np.isfinite([lo, hi]).all() or lo < -1e-6 or hi > 1.0 + 1e-6:
        raise ValueError(f"float images must be in [0, 1] (divide 0..255 images by 255, or pass uint8); "
                         f"got values in [{lo}, {hi}]")
    return x.float().clamp(0.0, 1.0)


def read_images(path: Path, channels: int | None = None, size: int | None = None,
                max_pixels: int = images.MAX_PIXELS) -> tuple[list[str], np.ndarray]:
    """Names and a batch from ``path``: an ``.npy`` array, an ``.npz`` archive (its ``x``/``images`` array, else
    its only array), or a folder of images. With ``channels`` and ``size`` (a model's input) a folder is read
    as a domain folder is (loose images and class sub-folders, the same checks; names relative to it, sorted)
    and every image brought to uint8 (N, channels, size, size) by ``images.load_image``; without them, its loose
    images are read as grayscale uint8 (N, H, W), all of one size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir() and channels and size:
        names, batch, _ = read_model_inputs(path, channels, size, max_pixels, on_bad="error")
        return names, batch
    if path.is_dir():
        files, batch = images.read_folder(path, "L")
        return [f.name for f in files], batch  # (N, H, W) uint8
    array, _ = images.read_arrays(path)
    return [str(i) for i in range(len(array))], array


def read_model_inputs(folder: Path, channels: int, size: int, max_pixels: int = images.MAX_PIXELS,
                      on_bad: str = "skip", resize: str = "stretch") -> tuple[list[str], np.ndarray, list[str]]:
    """Names (relative to ``folder``, sorted), a uint8 batch (N, channels, size, size) and the skipped names:
    ``folder`` read as a domain folder is. An undecodable or truncated image is skipped and named in the third
    element (``on_bad="skip"``, as ``data.on_bad_image``) or refused (``"error"``: ``ImageError`` naming it); an
    image over ``max_pixels`` is always refused; no readable image at all is a ``ValueError``."""
    if on_bad not in ("skip", "error"):
        raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")
    names, arrays, skipped = [], [], []
    for f, _ in sorted(folders.list_folder(folder)):
        name = f.relative_to(folder).as_posix()
        try:
            arrays.append(images.load_image(f, channels, size, max_pixels=max_pixels, resize=resize))
        except images.TooLarge:
            raise
        except images.ImageError:
            if on_bad == "error":
                raise
            skipped.append(name)
            continue
        names.append(name)
    if not arrays:
        raise ValueError(f"{folder}: none of its {len(skipped)} image(s) could be read")
    return names, np.stack(arrays), skipped


def model_inputs(module: ServableModel, given: Any) -> tuple[list[str] | None, np.ndarray]:
    """What a user has → (the image paths, or None for an array; a batch ``module`` takes): a folder or an image
    file (``str`` / ``Path``), a list of them, a numpy array of path strings or a DataFrame with a ``path``
    column (what MLflow's REST server hands over), or an image array (N, H, W) / (N, C, H, W) as is. A folder
    is read as a domain folder is (loose images and class sub-folders, sorted); every file through
    ``images.load_image`` with the model's size, channels and resize. A bad image is an error naming it."""
    if hasattr(given, "columns"):  # a pandas DataFrame (duck-typed: serving does not import pandas)
        if "path" not in given.columns:
            raise TypeError(f"a DataFrame input needs a 'path' column (image files or folders); got columns "
                            f"{list(given.columns)}")
        given = given["path"].tolist()
    if isinstance(given, np.ndarray) and given.dtype.kind in "USO":
        given = [str(v) for v in given.ravel()]
    if isinstance(given, str | Path):
        given = [given]
    if not (isinstance(given, list | tuple) and given and all(isinstance(p, str | Path) for p in given)):
        return None, np.asarray(given)
    names, batches = [], []
    for path in map(Path, given):
        if path.is_dir():
            found, batch, _ = read_model_inputs(path, module.in_channels, module.input_size, on_bad="error",
                                                resize=module.resize)
            names += [str(path / name) for name in found]
            batches.append(batch)
        elif path.is_file():
            names.append(str(path))
            batches.append(images.load_image(path, module.in_channels, module.input_size,
                                             resize=module.resize)[None])
        else:
            raise FileNotFoundError(f"{path}: no such image file or folder")
    return names, np.concatenate(batches)
