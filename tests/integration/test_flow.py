"""The whole flow on conf/smoke.yaml (real MNIST and USPS), twice, against real Prefect, MLflow and Optuna."""

from __future__ import annotations

import optuna
import pytest
from mlflow import MlflowClient
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from torchtransfer_cli.app import app
from torchtransfer_flows.transfer import transfer_learning

PARENT_TAGS = ("prefect.flow_run_id", "prefect.flow_run_name", "git.commit", "git.dirty", "config.sha256",
               "data.fingerprint", "torchtransfer.version", "model.sha256", "steer.decision", "steer.reason")
PARENT_METRICS = ("shift/mmd2", "shift/p_value", "test/target_acc", "test/target_macro_f1", "test/source_acc",
                  "baseline/target_acc", "test/gain", "tuning/best_value", "shift/a_distance", "shift/mmd2_after")


def _children(client: MlflowClient, run):
    return client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")


def _task_states(flow_run_id: str) -> dict[str, str]:
    with get_client(sync_client=True) as prefect:
        runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}


@pytest.mark.slow
def test_flow_tracks_registers_and_reuses_the_source_model(smoke_cfg, tmp_path):
    client = MlflowClient(smoke_cfg.tracking.uri)
    first = transfer_learning(smoke_cfg)

    parent = client.get_run(first.run_id)
    assert parent.info.status == "FINISHED"
    assert set(PARENT_TAGS) <= set(parent.data.tags)
    assert set(PARENT_METRICS) <= set(parent.data.metrics)
    m = parent.data.metrics
    assert m["test/gain"] == pytest.approx(m["test/target_acc"] - m["baseline/target_acc"])
    assert 0 < m["shift/p_value"] <= 1 and m["shift/mmd2"] > 0
    assert parent.data.params["data.source.name"] == "mnist" and "hp.lr" in parent.data.params
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "config")}
    artifacts |= {a.path for a in client.list_artifacts(first.run_id, "shift")}
    assert {"config/resolved.yaml", "shift/report.json"} <= artifacts

    report = open(client.download_artifacts(first.run_id, "report.html", str(tmp_path))).read()
    assert report.count("data:image/png;base64") >= 4 and "Fine-tuning curves" in report and "Promotion" in report

    trials = _children(client, parent)
    assert len(trials) == smoke_cfg.tuning.n_trials == 2
    (zero,) = [t for t in trials if t.data.tags["optuna.trial_number"] == "0"]  # search.first, as configured
    first_trial = smoke_cfg.search.first
    assert (float(zero.data.params["hp.lr"]), zero.data.params["hp.strategy"]) == (first_trial.lr, first_trial.strategy)
    for trial in trials:
        assert trial.info.status == "FINISHED" and trial.data.tags["optuna.trial_state"] == "COMPLETE"
        assert {"hp.lr", "hp.strategy", "hp.epochs"} <= set(trial.data.params)
        history = client.get_metric_history(trial.info.run_id, "val/acc")
        assert [h.step for h in history] == list(range(1, int(trial.data.params["hp.epochs"]) + 1))

    version = client.get_model_version_by_alias(smoke_cfg.registry.model_name, "champion")
    assert set(version.aliases) == {"challenger", "champion"}
    assert version.run_id == first.run_id and version.tags["run_id"] == first.run_id
    assert float(version.tags["test.target_acc"]) == pytest.approx(m["test/target_acc"], abs=1e-6)
    first_states = _task_states(parent.data.tags["prefect.flow_run_id"])
    assert first_states["pretrain_source"] == "Completed" and not first.source_model_cached

    second = transfer_learning(smoke_cfg)
    again = client.get_run(second.run_id)
    states = _task_states(again.data.tags["prefect.flow_run_id"])
    assert states["pretrain_source"] == "Cached"  # asserted through the Prefect API, not assumed
    assert states["prepare_data"] == "Cached" and first_states["prepare_data"] == "Completed"
    assert again.data.tags["data.fingerprint"] == parent.data.tags["data.fingerprint"]
    assert second.source_model_cached and again.data.tags["source_model.cached"] == "true"
    assert again.data.tags["source_model.sha256"] == parent.data.tags["source_model.sha256"]
    # same config, same data: the study is complete, so the second run re-uses its best trial, and the
    # deterministic fine-tune gives identical weights and metrics
    assert _children(client, again) == []
    study = optuna.load_study(study_name=first.study_name, storage=smoke_cfg.tuning.storage)
    assert len(study.trials) == 2
    assert again.data.tags["model.sha256"] == parent.data.tags["model.sha256"]
    assert again.data.metrics["test/target_acc"] == m["test/target_acc"]
    # an equal score does not move the champion: v2 is only the challenger
    assert second.version == "2" and second.aliases == ("challenger",)
    assert str(client.get_model_version_by_alias(smoke_cfg.registry.model_name, "champion").version) == "1"


@pytest.mark.slow
def test_a_config_change_invalidates_only_what_depends_on_it(smoke_cfg):
    client = MlflowClient(smoke_cfg.tracking.uri)

    def states(cfg):
        summary = transfer_learning(cfg)
        return _task_states(client.get_run(summary.run_id).data.tags["prefect.flow_run_id"])

    def changed(**sections):
        return smoke_cfg.model_copy(update={k: getattr(smoke_cfg, k).model_copy(update=v)
                                            for k, v in sections.items()})

    assert states(smoke_cfg)["prepare_data"] == "Completed"
    new_target = smoke_cfg.data.target.model_copy(update={"val": 40})
    after_data = states(changed(data={"target": new_target}))
    assert (after_data["prepare_data"], after_data["pretrain_source"]) == ("Completed", "Completed")
    after_pretrain = states(changed(data={"target": new_target}, pretrain={"epochs": 4}))
    assert (after_pretrain["prepare_data"], after_pretrain["pretrain_source"]) == ("Cached", "Completed")


def test_cli_config_error_exits_2_and_creates_nothing(tmp_path):
    result = CliRunner().invoke(app, ["run", "-c", "conf/default.yaml", "--set", "train.batch_size=0",
                                      "--set", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 2
    assert "train.batch_size" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_failed_run_exits_1_and_marks_the_parent_run_failed(smoke_cfg, tmp_path, monkeypatch):
    """A stage that fails after the run started (here: ResNet-18 ImageNet weights that are not on disk, found
    by the source model's training) exits 1 and leaves the parent run FAILED. (Split sizes a domain cannot
    hold no longer get this far: the preflight refuses them before any run exists, exit 2.)"""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torchvision weights in this cache
    uri = smoke_cfg.tracking.uri
    result = CliRunner().invoke(app, [
        "run", "-c", "conf/default.yaml", "-c", "conf/smoke.yaml", "--set", f"cache_dir={smoke_cfg.cache_dir}",
        "--set", f"tracking.uri={uri}", "--set", "model.backbone=resnet18", "--set", "model.pretrained=true"])
    assert result.exit_code == 1
    assert "run failed" in result.output and "resnet18-f37072fd.pth" in result.output
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
