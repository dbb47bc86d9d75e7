"""The backbone zoo: ``lenet``, ``resnet18/34/50``, ``efficientnet_lite0``; each model has ``features`` (the
trunk, (N, C, H, W) → (N, d)), ``head`` (d → classes) and ``blocks`` (the trunk's stages, for freezing).

``zoo`` builds, saves and loads models; ``backbones`` wraps torchvision's and EfficientNet-Lite's networks.
"""

from torchtransfer.models import backbones, zoo
from torchtransfer.models.zoo import (
    BACKBONES,
    HAS_PRETRAINED_WEIGHTS,
    INPUT_CHANNELS,
    INPUT_SIZES,
    LeNet,
    build_model,
    efficientnet_lite0,
    lenet,
    load_weights,
    resnet18,
    resnet34,
    resnet50,
    save_weights,
)

__all__ = ["BACKBONES", "HAS_PRETRAINED_WEIGHTS", "INPUT_CHANNELS", "INPUT_SIZES", "LeNet", "backbones",
           "build_model", "efficientnet_lite0",
           "lenet", "load_weights", "resnet18", "resnet34", "resnet50", "save_weights", "zoo"]
