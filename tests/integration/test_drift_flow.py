"""The nightly decision on real folders: the flow with ``drift.enabled`` runs three times on one target folder.

Real MNIST PNGs are the source and real USPS digits the target (loose, unlabelled, plus a few labelled for
validation and test). Run 1 has no champion and retrains; run 2 sees the same data and is skipped in a fraction
of run 1's time; then real USPS digits rotated by a few degrees are added to the target folder and run 3 finds
the shift and retrains. The drift record of all three is in MLflow (``smoke-monitoring``), and every check emitted
its Prefect event.
"""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import EventFilter, EventNameFilter

from tests.conftest import CONF
from tests.imagefolders import DRIFT_OVERRIDES, add_rotated, drift_folders
from torchtransfer.config import load_config
from torchtransfer.data import datasets
from torchtransfer.registry import references
from torchtransfer_flows.transfer import ExperimentSummary, SkippedRun, transfer_learning


@pytest.fixture
def folders(tmp_path, archive_cache):
    usps = datasets.usps(archive_cache)
    return *drift_folders(tmp_path, usps), usps


def _run(tmp_path, cache_dir, mine, *overrides: str):
    cfg = load_config(CONF / "default.yaml", CONF / "smoke.yaml", mine, overrides=[
        f"cache_dir={cache_dir}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}", "device=cpu", *DRIFT_OVERRIDES, *overrides])
    start = time.monotonic()
    summary = transfer_learning(cfg)
    return summary, time.monotonic() - start


def drift_events(name: str, run_ids: set[str], count: int) -> list:
    """The events ``name`` of these MLflow runs, once ``count`` of them arrived (or after ~10 s)."""
    with get_client(sync_client=True) as client:
        for _ in range(40):  # the server persists events asynchronously
            page = client.read_events(EventFilter(event=EventNameFilter(name=[name])), limit=50)
            mine = [e for e in page.events if e.payload.get("mlflow_run_id") in run_ids]
            if len(mine) >= count:
                return mine
            time.sleep(0.25)
    return mine


def test_three_nightly_runs_retrain_skip_retrain(folders, tmp_path, cache_dir):
    target, mine, usps = folders
    first, t_first = _run(tmp_path, cache_dir, mine)
    assert isinstance(first, ExperimentSummary) and first.drift.verdict.cause == "no_champion"
    assert first.version == "1" and "champion" in first.aliases

    second, t_second = _run(tmp_path, cache_dir, mine)
    assert isinstance(second, SkippedRun) and second.drift.verdict.decision == "skip"
    assert second.drift.verdict.cause == "unchanged", second.drift.verdict.reason
    print(f"run 1 {t_first:.1f} s, run 2 {t_second:.1f} s")
    assert t_second < 0.5 * t_first, (t_first, t_second)

    add_rotated(target, usps)  # 300 new digits, rotated by 20°
    third, _ = _run(tmp_path, cache_dir, mine)
    assert isinstance(third, ExperimentSummary), third.drift.verdict.reason
    assert third.drift.verdict.cause in ("shift", "shift_and_score"), third.drift.verdict.reason
    assert third.drift.measured.p_value < 0.05 and third.version == "2"

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {s.run_id: client.get_run(s.run_id) for s in (first, second, third)}
    assert [r.data.tags["drift.decision"] for r in runs.values()] == ["retrain", "skip", "retrain"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    skipped = runs[second.run_id].data
    assert skipped.metrics["drift/p_value"] == 1.0 and "drift/score" in skipped.metrics
    assert not client.list_artifacts(second.run_id, "shift")  # no shift analysis, no tuning: it ended early
    version = client.get_model_version("torchtransfer-smoke", "1")
    assert version.tags[references.REFERENCE_TAG] == f"runs:/{first.run_id}/{references.ARTIFACT}"
    assert version.tags["drift.fingerprint"] == runs[first.run_id].data.tags["data.fingerprint"]

    monitoring = client.get_experiment_by_name("smoke-monitoring")
    [record] = client.search_runs([monitoring.experiment_id])
    assert [m.value for m in client.get_metric_history(record.info.run_id, "drift/retrain")] == [1.0, 0.0, 1.0]
    p_values = [m.value for m in client.get_metric_history(record.info.run_id, "drift/p_value")]
    assert p_values[0] == 1.0 and p_values[1] < 0.05  # run 1 had no champion to measure
    steps = {m.step for m in client.get_metric_history(record.info.run_id, "drift/retrain")}
    assert len(steps) == 1 and 20260000 < steps.pop() < 21000000  # the run date, YYYYMMDD

    with get_client(sync_client=True) as prefect:  # the Prefect run's summary says what was decided and why
        key = ArtifactFilter(key=ArtifactFilterKey(any_=["smoke-summary"]))
        artifacts = prefect.read_artifacts(artifact_filter=key)
    by_run = {str(a.flow_run_id): a.data for a in artifacts}
    markdown = by_run[skipped.tags["prefect.flow_run_id"]]
    assert "| drift decision | skip |" in markdown and f"| drift reason | {second.drift.verdict.reason} |" in markdown
    assert "| drift p-value |" in by_run[runs[third.run_id].data.tags["prefect.flow_run_id"]]

    retrain = drift_events("torchtransfer.drift.retrain", set(runs), 2)
    skip = drift_events("torchtransfer.drift.skip", set(runs), 1)
    assert len(retrain) == 2 and len(skip) == 1
    assert skip[0].resource.id == "torchtransfer.drift.smoke" and skip[0].payload["cause"] == "unchanged"
