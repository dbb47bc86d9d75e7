"""analyze_shift, steer_search and measure_adapted_shift on real MNIST/USPS (smoke sizes), real MLflow."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient

from torchtransfer.models import build_model, save_weights
from torchtransfer_tasks.data import prepare_data
from torchtransfer_tasks.shift import analyze_shift, measure_adapted_shift, steer_search
from torchtransfer_tasks.tracking import start_run
from torchtransfer_tasks.train import ModelRef


def _fine_tuned_copy(model, pair, tmp_path, run_id, method: str = "dan") -> ModelRef:
    """``model`` fine-tuned on the smoke pair (3 epochs; ``dan`` with a strong weight, or ``none``: source
    labels only, the control), saved as its own ModelRef."""
    import copy

    from torchtransfer import transfer_learner
    from torchtransfer.train.adaptation import AdaptationSpec

    learner = transfer_learner(copy.deepcopy(model), lr=0.02, device="cpu")
    learner.fit(pair.source_train, 3, target=None if method == "none" else pair.target_train,
                adaptation=AdaptationSpec(method, weight=5.0), batch_size=32, seed=0)
    path = tmp_path / f"{method}.pt"
    return ModelRef(str(path), save_weights(learner.model, path), "lenet", 10, run_id)


def test_shift_tasks_report_log_and_steer_both_ways(smoke_cfg, tmp_path):
    client = MlflowClient(smoke_cfg.tracking.uri)
    run = start_run(smoke_cfg.record())
    data = prepare_data(smoke_cfg.data, smoke_cfg.seed, smoke_cfg.cache_path)
    model = build_model("lenet", 10, 0)
    ref = ModelRef(str(tmp_path / "m.pt"), save_weights(model, tmp_path / "m.pt"), "lenet", 10, run.run_id)

    analysis = analyze_shift(data, ref, smoke_cfg.shift, 0, run)
    adapted = _fine_tuned_copy(model, data.load(), tmp_path, run.run_id)
    after = measure_adapted_shift(data, adapted, smoke_cfg.shift, 0, run)
    control = _fine_tuned_copy(model, data.load(), tmp_path, run.run_id, "none")
    control_after = measure_adapted_shift(data, control, smoke_cfg.shift, 0, start_run(smoke_cfg.record()))
    metrics = client.get_run(run.run_id).data.metrics
    assert metrics["shift/p_value"] == analysis.p_value == 1 / 51  # MNIST vs USPS pixels: every null below
    assert metrics["shift/mmd2"] > 0.05 and 0 < metrics["shift/a_distance"] <= 2
    # the adapted model's features (DAN pulled them together) measure closer than the start model's (``ref``,
    # what analyze_shift measured) and closer than those of the same fine-tuning without DAN, measured through
    # the same task: it measures the model it is given. Measured: 0.074 vs 0.255 and 0.178; with data and
    # init seeds 0-2, DAN / start 0.08-0.29 and DAN / control 0.09-0.41
    assert metrics["shift/mmd2_after"] == after.mmd2 < 0.5 * analysis.features.mmd2
    assert after.mmd2 < 0.7 * control_after.mmd2
    artifacts = {a.path for a in client.list_artifacts(run.run_id, "shift")}
    assert {"shift/report.json", "shift/embedding.png", "shift/null_pixels.png", "shift/null_features.png",
            "shift/report_after.json"} <= artifacts
    report = json.loads(Path(client.download_artifacts(run.run_id, "shift/report.json", str(tmp_path))).read_text())
    assert report["pixels"]["n_permutations"] == 50 and report["seed"] == 0
    assert len(report["pixels"]["per_class"]) == 10

    agg_run = start_run(smoke_cfg.record())  # shift.test: aggregated, the same images and model
    agg = analyze_shift(data, ref, smoke_cfg.shift.model_copy(update={"test": "aggregated"}), 0, agg_run)
    assert agg.pixels.test == agg.features.test == "aggregated" and agg.p_value == 1 / 51
    assert agg.pixels.mmd2 == pytest.approx(analysis.pixels.mmd2, rel=1e-9)  # the median bandwidth's MMD²
    agg_report = json.loads(Path(client.download_artifacts(agg_run.run_id, "shift/report.json",
                                                           str(tmp_path / "agg"))).read_text())
    assert agg_report["features"]["test"] == "aggregated" and len(agg_report["features"]["p_values"]) == 7

    kept = steer_search(smoke_cfg.search, smoke_cfg.shift, analysis, run)  # significant on features → kept
    assert kept == smoke_cfg.search
    assert client.get_run(run.run_id).data.tags["steer.decision"] == "adaptation kept"

    other = start_run(smoke_cfg.record())
    null_like = replace(analysis, features=replace(analysis.features, p_value=0.4))
    removed = steer_search(smoke_cfg.search, smoke_cfg.shift, null_like, other)
    assert removed.method == ("none",) and removed.adaptation_weight.high == 0.0
    tags = client.get_run(other.run_id).data.tags
    assert tags["steer.decision"] == "adaptation removed" and "p = 0.4 >= alpha = 0.05" in tags["steer.reason"]

    off = smoke_cfg.shift.model_copy(update={"steer": False})
    third = start_run(smoke_cfg.record())
    assert steer_search(smoke_cfg.search, off, null_like, third) == smoke_cfg.search  # steering disabled
    assert client.get_run(third.run_id).data.tags["steer.decision"] == "unchanged"
