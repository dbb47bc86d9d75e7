"""Backbones with a ``features`` trunk and a ``head``, plus freezing for the fine-tuning strategies.

Every model here maps images (N, C, 28, 28) to logits (N, num_classes) and exposes
``model.features(x) -> (N, feature_dim)`` (the penultimate representation that MMD and adaptation
losses compare) and ``model.head`` (the classifier that feature extraction retrains).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn


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

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


def lenet(num_classes: int = 10, pretrained: bool = False) -> LeNet:
    """A LeNet for digits. It has no published weights: ``pretrained=True`` is an error."""
    if pretrained:
        raise ValueError("lenet has no pretrained weights; torchtransfer pretrains it on the source domain")
    return LeNet(num_classes)


BACKBONES: dict[str, Callable[..., nn.Module]] = {"lenet": lenet}
HAS_PRETRAINED_WEIGHTS = {"lenet": False}


def build_model(backbone: str, num_classes: int, seed: int) -> nn.Module:
    """A freshly initialised backbone; ``seed`` fixes the initial weights."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {sorted(BACKBONES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BACKBONES[backbone](num_classes=num_classes)


def set_strategy(model: nn.Module, strategy: str) -> list[nn.Parameter]:
    """Freeze for ``strategy`` and return the parameters to optimise.

    - ``feature_extraction``: the trunk is frozen; only ``model.head`` trains.
    - ``fine_tune``: every parameter trains.
    """
    if strategy not in ("feature_extraction", "fine_tune"):
        raise ValueError(f"unknown strategy {strategy!r}; expected feature_extraction or fine_tune")
    trainable_all = strategy == "fine_tune"
    for param in model.parameters():
        param.requires_grad_(trainable_all)
    for param in model.head.parameters():
        param.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def save_weights(model: nn.Module, path: Path) -> str:
    """Write ``model.state_dict()`` atomically; return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_weights(backbone: str, num_classes: int, path: Path) -> nn.Module:
    """A backbone with the weights saved at ``path`` (loaded with ``weights_only=True``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no weights file; expected a state dict saved by save_weights")
    model = BACKBONES[backbone](num_classes=num_classes)
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return model
