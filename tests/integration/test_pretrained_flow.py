"""The whole flow with EfficientNet-Lite0 and its packaged ImageNet weights on real MNIST → USPS: the shipped
experiment file (conf/experiments/pretrained_digits.yaml) shrunk by conf/smoke.yaml to 32 px, a few hundred
images, one trial of one epoch; the full-size comparison is benchmarks/pretrained.py."""

from __future__ import annotations

import torch
from mlflow import MlflowClient
from mlflow.models import get_model_info
from typer.testing import CliRunner

from tests.conftest import CONF
from torchtransfer.models import efficientnet_lite0
from torchtransfer.registry import tracking
from torchtransfer_cli.app import app

SMALL = [a for kv in ("tuning.n_trials=1", "data.source.train=100", "data.source.test=50",
                      "data.target.train=100", "data.target.val=30", "data.target.test=50") for a in ("--set", kv)]


def test_pretrained_experiment_runs_the_flow_from_the_imagenet_trunk_with_a_source_trained_head(tmp_path, cache_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(app, [
        "run", "-c", str(CONF / "default.yaml"), "-c", str(CONF / "experiments/pretrained_digits.yaml"),
        "-c", str(CONF / "smoke.yaml"), "--quiet", *SMALL, "--set", f"cache_dir={cache_dir}",
        "--set", f"tracking.uri={uri}", "--set", f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "--set", "device=cpu"])
    assert result.exit_code == 0, result.output

    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("smoke").experiment_id],
                               "attributes.status = 'FINISHED' and tags.`mlflow.parentRunId` IS NULL")
    params, metrics = run.data.params, run.data.metrics
    assert (params["model.backbone"], params["model.pretrained"], params["model.image_size"]) == (
        "efficientnet_lite0", "True", "32")
    assert 0.0 <= metrics["test/target_acc"] <= 1.0 and 0.0 <= metrics["pretrain/source_val_acc"] <= 1.0

    # The source model is the ImageNet trunk, untouched (feature extraction), with a head trained on MNIST.
    [checkpoint] = (cache_dir / "source_models").glob("*.pt")
    source = torch.load(checkpoint, weights_only=True)
    imagenet = efficientnet_lite0(num_classes=10, pretrained=True).state_dict()
    trunk = [k for k in imagenet if k.startswith("trunk.")]
    assert len(trunk) > 200 and all(torch.equal(source[k], imagenet[k]) for k in trunk)
    assert not torch.equal(source["head.weight"], efficientnet_lite0(num_classes=10, pretrained=False).head.weight)

    with tracking(uri):
        meta = get_model_info("models:/torchtransfer-smoke@champion").metadata
    assert (meta["input_size"], meta["in_channels"]) == (32, 3)
