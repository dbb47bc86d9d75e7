"""The model zoo: ``lenet`` (digits), ``resnet18/34/50``, ``efficientnet_lite0``.

Every model maps images (N, C, H, W) in [0, 1] to logits (N, num_classes) and exposes the contract the
learner uses: ``features(x) -> (N, feature_dim)`` (the representation adaptation losses compare), ``head``
(an ``nn.Linear``), ``feature_dim`` and ``blocks()`` (the trunk, input → output, for the strategies).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from torchtransfer.locking import private_tmp
from torchtransfer.models.backbones import efficientnet_lite0, resnet
from torchtransfer.names import INPUT_CHANNELS, INPUT_SIZES  # noqa: F401  (re-exported: the backbone input tables)


class LeNet(nn.Module):
    """LeNet-style CNN for 28×28 digits, without BatchNorm.

    BatchNorm whose statistics come from the source alone collapses target accuracy on MNIST→USPS (about
    46 % in our prototype), so this trunk has none.

    Shape:
        - Input: (N, in_channels, 28, 28)
        - features: (N, 500)
        - Output: (N, num_classes)
    """

    feature_dim = 500

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 20, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(),  # (N, 20, 12, 12)
            nn.Conv2d(20, 50, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(),  # (N, 50, 4, 4)
            nn.Flatten(),  # (N, 800)
            nn.Linear(800, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, num_classes)

    def blocks(self) -> list[nn.Module]:
        """conv1, conv2, fc (views over ``trunk``; the state-dict keys stay ``trunk.<i>.*``)."""
        return [self.trunk[0:3], self.trunk[3:6], self.trunk[6:9]]

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


def lenet(num_classes: int = 10, pretrained: bool = False) -> LeNet:
    """A LeNet for digits. It has no published weights: ``pretrained=True`` is an error."""
    if pretrained:
        raise ValueError("lenet has no pretrained weights; torchtransfer pretrains it on the source domain")
    return LeNet(num_classes)


def resnet18(num_classes: int = 10, pretrained: bool = False, weights: str | Path | None = None) -> nn.Module:
    """ResNet-18; ``pretrained=True`` reads ImageNet weights from the torch cache or ``weights=PATH``."""
    return resnet("resnet18", num_classes, pretrained, weights)


def resnet34(num_classes: int = 10, pretrained: bool = False, weights: str | Path | None = None) -> nn.Module:
    return resnet("resnet34", num_classes, pretrained, weights)


def resnet50(num_classes: int = 10, pretrained: bool = False, weights: str | Path | None = None) -> nn.Module:
    return resnet("resnet50", num_classes, pretrained, weights)


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "lenet": lenet, "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "efficientnet_lite0": efficientnet_lite0,
}
# The images each backbone takes, (channels, size) — every domain and every served image is brought to it
# (torchtransfer.data.images.conform). lenet's layers fix 28×28 grayscale; ResNets default to 32×32 RGB (CPU
# speed; their ImageNet weights were trained at 224, set model.image_size on a GPU); EfficientNet-Lite0 to its
# native 224×224.
HAS_PRETRAINED_WEIGHTS = {"lenet": False, "resnet18": True, "resnet34": True, "resnet50": True,
                          "efficientnet_lite0": True}


def build_model(backbone: str, num_classes: int, seed: int, pretrained: bool = False,
                weights: str | Path | None = None) -> nn.Module:
    """A backbone (ImageNet weights when ``pretrained``, from the file ``weights`` when given) with a fresh
    head; ``seed`` fixes the new weights."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {sorted(BACKBONES)}")
    extra = {} if weights is None else {"weights": weights}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BACKBONES[backbone](num_classes=num_classes, pretrained=pretrained, **extra)


def save_weights(model: nn.Module, path: Path) -> str:
    """Write ``model.state_dict()`` atomically; return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path)
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_weights(backbone: str, num_classes: int, path: Path) -> nn.Module:
    """A backbone with the weights saved at ``path`` (loaded with ``weights_only=True``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no weights file; expected a state dict saved by save_weights")
    model = partial(BACKBONES[backbone], pretrained=False)(num_classes=num_classes)
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return model
