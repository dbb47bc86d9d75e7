"""``registry.from_registry`` against a real MLflow SQLite registry in tmp_path."""

import torch
from mlflow import MlflowClient

from torchtransfer import models, registry


def test_from_registry_starts_from_the_aliased_version(tmp_path):
    import mlflow
    import mlflow.pytorch

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        model = models.build_model("lenet", 10, seed=3)
        with mlflow.start_run():
            info = mlflow.pytorch.log_model(model, name="model", serialization_format="pickle",
                                            pip_requirements=["torch"])
        version = mlflow.register_model(info.model_uri, "digits")
        MlflowClient(uri).set_registered_model_alias("digits", "champion", version.version)
        loaded = registry.from_registry("models:/digits@champion")
    finally:
        mlflow.set_tracking_uri(None)
    x = torch.rand(2, 1, 28, 28)
    assert isinstance(loaded, models.LeNet) and torch.equal(loaded(x), model(x))


def test_from_registry_reads_the_servable_model_the_flow_registers(smoke_cfg):
    import mlflow

    from torchtransfer_flows.transfer import transfer_learning

    summary = transfer_learning(smoke_cfg)
    mlflow.set_tracking_uri(smoke_cfg.tracking.uri)
    try:
        network = registry.from_registry(f"models:/{summary.model_name}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    assert hasattr(network, "features") and hasattr(network, "head")
    assert network(torch.rand(3, 1, 28, 28)).shape == (3, 10)
