"""The registry gate without target labels (``registry.gate``), on real data, Prefect tasks and MLflow.

With ``data.target.val = 0`` and ``data.target.test = 0`` the target has no labelled image at all: evaluation
reports no target accuracy, and promotion compares a label-free validator's score of the challenger and of the
champion on the same unlabelled target images, saying so in every decision; ``manual`` never promotes.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.conftest import CONF, seeded_cache
from tests.integration.test_registry import trained_models
from torchtransfer import registry
from torchtransfer.config import ConfigError, load_config
from torchtransfer.registry.gate import label_free_score
from torchtransfer_tasks.data import prepared_data
from torchtransfer_tasks.evaluate import evaluate_model
from torchtransfer_tasks.register import register_model
from torchtransfer_tasks.tracking import end_run, start_run
from torchtransfer_tasks.train import ModelRef

NAME = "unlabelled-usps"


@pytest.fixture(scope="module")
def store(tmp_path_factory, archive_cache):
    tmp = tmp_path_factory.mktemp("gate")
    seeded_cache(tmp, archive_cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # ./mlruns stays in tmp
        yield tmp


def _cfg(store, gate: str, name: str = NAME):
    return load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=[
        f"cache_dir={store / 'cache'}", f"tracking.uri=sqlite:///{store / 'mlflow.db'}",
        f"tuning.storage=sqlite:///{store / 'optuna.db'}", "device=cpu", f"registry.model_name={name}",
        "data.target.val=0", "data.target.test=0", "tuning.objective=im", f"registry.gate={gate}"])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, ModelRef]:
    return trained_models(tmp_path_factory.mktemp("weights"))


def _one_run(cfg, model: ModelRef, baseline: ModelRef):
    run = start_run(cfg.record())
    data = prepared_data(cfg.data, cfg.seed, cfg.cache_path, run)
    metrics = evaluate_model(data, model, baseline, "cpu", run, cfg.registry.gate, cfg.seed)
    registered = register_model(model, metrics, data, cfg.registry, run, cfg.seed)
    end_run(run, "FINISHED")
    return run, data, metrics, registered


def test_config_refuses_accuracy_gate_without_test_labels(store):
    with pytest.raises(ConfigError, match=r"data\.target\.test is 0 .* registry\.gate is 'target_test_acc'"):
        _cfg(store, "target_test_acc")


def test_label_free_gate_compares_both_models_on_the_same_unlabelled_images(store, models):
    cfg = _cfg(store, "im")
    runs = [_one_run(cfg, models[name], models["random"]) for name in ("weak", "good", "random")]
    client = MlflowClient(cfg.tracking.uri)
    scores = [m["gate/im"] for _, _, m, _ in runs]
    assert len(set(scores)) == 3, scores  # the premise: three different label-free scores
    for _, data, metrics, _ in runs:
        assert "test/target_acc" not in metrics and "test/source_acc" in metrics
        assert data.load().target_test.x.shape[0] == 0 and bool((data.load().target_train.y == -1).all())
    champion = [0]  # the index of the champion after each run, by the label-free score alone
    for i in (1, 2):
        champion.append(i if scores[i] > scores[champion[-1]] else champion[-1])
    history = registry.read_history(client, NAME)
    assert [e["to"] for e in history] == [str(c + 1) for c in champion]
    assert all(e["gate"] == "im" and "label-free im score (unverified by target labels)" in e["reason"]
               for e in history)
    pair = runs[0][1].load()
    for entry, earlier in zip(history[1:], champion[:-1], strict=True):  # the champion re-scored on this data
        weights = models[("weak", "good", "random")[earlier]].load()
        assert entry["champion_acc"] == pytest.approx(label_free_score(weights, pair, "im", cfg.seed), abs=1e-6)
    parent = client.get_run(runs[0][0].run_id)
    assert parent.data.tags["promotion.gate"] == "im" and not client.list_artifacts(runs[0][0].run_id, "eval")


def test_manual_gate_registers_a_challenger_and_never_promotes(store, models):
    cfg = _cfg(store, "manual", name=f"{NAME}-manual")
    _, _, _, registered = _one_run(cfg, models["good"], models["random"])
    client = MlflowClient(cfg.tracking.uri)
    assert not registered.decision.promote and registered.aliases == ("challenger",)
    assert f"torchtransfer promote {NAME}-manual 1" in registered.decision.reason
    assert registry.by_alias(client, f"{NAME}-manual", "champion") is None
