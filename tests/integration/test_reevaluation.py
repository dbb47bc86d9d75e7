"""A champion scored on other test data (here: an older pytorch-flavour version with no test fingerprint) is
loaded from a real MLflow SQLite registry and re-evaluated on the challenger's test split, or the gate is told
why it could not be."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from torchtransfer import registry
from torchtransfer.data.splits import build_pair
from torchtransfer.evaluation import split_fingerprint
from torchtransfer.models import build_model
from torchtransfer.registry import promotion


def _legacy_version(uri: str, model: torch.nn.Module, example: np.ndarray) -> str:
    """Register ``model`` the way the first torchtransfer did: pytorch flavour, no ``test.fingerprint`` tag."""
    import mlflow
    import mlflow.pytorch

    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("legacy"))
    with registry.tracking(uri), mlflow.start_run(run_id=run.info.run_id):
        info = mlflow.pytorch.log_model(model, name="model", input_example=example, serialization_format="pickle",
                                        pip_requirements=["torch"])
        version = mlflow.register_model(info.model_uri, "digits", tags={"test.target_acc": "0.990000"}).version
    client.set_registered_model_alias("digits", "champion", version)
    return str(version)


@pytest.fixture
def test_split(smoke_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # artifacts (./mlruns) stay in tmp
    return build_pair(smoke_cfg.data, smoke_cfg.seed, Path(smoke_cfg.cache_dir)).target_test


def test_legacy_champion_is_re_evaluated_on_the_challengers_split(tmp_path, test_split):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = build_model("lenet", 10, seed=0).eval()
    version = _legacy_version(uri, model, test_split.x[:2].numpy())
    client, fp = MlflowClient(uri), split_fingerprint(test_split.x, test_split.y)
    champion = client.get_model_version_by_alias("digits", "champion")

    score = registry.score_version(client, uri, "digits", champion, fp, test_split.x, test_split.y)
    with torch.no_grad():
        expected = float((model(test_split.x).argmax(1) == test_split.y).float().mean())
    assert (score.version, score.fingerprint) == (version, fp) and score.target_acc == pytest.approx(expected)
    assert "re-evaluated" in score.note and "0.99" in score.note
    assert client.get_model_version("digits", version).tags[f"test.target_acc.on.{fp[:16]}"] == f"{expected:.6f}"
    cached = registry.score_version(client, uri, "digits", client.get_model_version("digits", version), fp,
                                    test_split.x[:0], test_split.y[:0])  # cached: no images needed
    assert cached.target_acc == pytest.approx(expected) and "earlier" in cached.note


def test_champion_that_cannot_be_re_evaluated_is_not_compared(tmp_path, test_split):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _legacy_version(uri, build_model("lenet", 10, seed=0), test_split.x[:2].numpy())
    client, fp = MlflowClient(uri), split_fingerprint(test_split.x, test_split.y)
    champion = client.get_model_version_by_alias("digits", "champion")
    stored = client.get_logged_model(champion.source.removeprefix("models:/")).artifact_location  # file://…
    shutil.rmtree(stored.removeprefix("file://"))  # the artifact store lost the champion's files

    score = registry.score_version(client, uri, "digits", champion, fp, test_split.x, test_split.y)
    assert score.fingerprint is None and "re-evaluation failed" in score.note
    decision = promotion.passes(promotion.Scored("2", 0.5, fp), score)
    assert not decision.promote and not decision.comparable
    assert "cannot compare" in decision.reason and "re-evaluation failed" in decision.reason
