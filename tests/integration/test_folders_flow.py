"""Your data through the whole flow: real MNIST and USPS images written to disk as PNG and JPEG files, the
CLI's ``run`` on them with the shipped folder experiment (conf/experiments/folders.yaml: ``data/source`` and
``data/target`` under the folder it runs in, as docs/data.md shows), then ``predict`` on the folder."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import get_model_info
from typer.testing import CliRunner

from tests.conftest import CONF
from tests.imagefolders import write_labelled, write_loose
from torchtransfer.data import datasets
from torchtransfer.registry import tracking
from torchtransfer_cli.app import app

DIGITS = [str(i) for i in range(10)]


@pytest.fixture
def folders(tmp_path, archive_cache, monkeypatch):
    """Source: 300 MNIST PNGs (28×28 grayscale) in class folders. Target: 300 USPS digits as 32×32 RGB JPEGs
    (yellow on blue), 250 loose (unlabelled) and 5 per class labelled in class folders; the working directory
    is the folder holding ``data/``."""
    source, target = tmp_path / "data" / "source", tmp_path / "data" / "target"
    write_labelled(source, datasets.mnist(), 30, ".png")
    usps = datasets.usps(archive_cache)
    write_loose(target, usps, 25, ".jpg", size=32, rgb=True)
    write_labelled(target, usps, 5, ".jpg", size=32, rgb=True, skip=25)
    (target / "broken.jpg").write_bytes(b"\xff\xd8\xff not a whole JPEG")  # skipped by training and predict
    monkeypatch.chdir(tmp_path)
    return source, target, CONF / "experiments" / "folders.yaml"


def test_image_folders_run_through_the_flow_and_predict_names_every_image(folders, tmp_path, cache_dir):
    source, target, mine = folders
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runner = CliRunner()
    result = runner.invoke(app, [
        "run", "-c", str(CONF / "default.yaml"), "-c", str(CONF / "smoke.yaml"), "-c", str(mine), "--quiet",
        "--set", f"cache_dir={cache_dir}", "--set", f"tracking.uri={uri}",
        "--set", f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}", "--set", "device=cpu"])
    assert result.exit_code == 0, result.output

    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("my-folders").experiment_id],
                               "attributes.status = 'FINISHED' and tags.`mlflow.parentRunId` IS NULL")
    params, metrics = run.data.params, run.data.metrics
    assert params["data.source.folder"] == "data/source" and params["data.target.folder"] == "data/target"
    assert params["data.source.name"] == "None" and params["model.num_classes"] == "10"  # derived from folders
    assert {k: params[f"data.n_{k}"] for k in ("source_train", "source_val", "source_test", "target_train",
                                               "target_val", "target_test")} == {
        "source_train": "210", "source_val": "45", "source_test": "45",
        "target_train": "250", "target_val": "20", "target_test": "30"}
    assert params["data.classes"] == ",".join(DIGITS) and params["data.target.n_skipped"] == "1"
    assert 0.0 <= metrics["test/target_acc"] <= 1.0 and metrics["shift/mmd2"] > 0
    inputs = {d.dataset.name: d.dataset.source for d in run.inputs.dataset_inputs}
    assert inputs["target_train"] == "torchtransfer:data/target"

    model_uri = "models:/torchtransfer-my-folders@champion"
    with tracking(uri):
        meta = get_model_info(model_uri).metadata
    assert (meta["input_size"], meta["in_channels"], meta["class_names"]) == (28, 1, DIGITS)

    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", model_uri, str(target), "-o", str(out), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable image(s): broken.jpg" in result.output
    table = pd.read_csv(out, dtype={"class": str})
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.jpg") if p.name != "broken.jpg")
    assert len(table) == len(files) == 300 and sorted(table["name"]) == files  # one row per image
    assert set(table["class"]) <= set(DIGITS) and [c for c in table if c.startswith("prob_")] == [
        f"prob_{d}" for d in DIGITS]
