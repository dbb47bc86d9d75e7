"""The registry on real data, real Prefect tasks and a real MLflow SQLite store.

Three parent runs register LeNets of known quality (trained here on real MNIST) through ``evaluate_model`` and
``register_model``: a weak first run becomes champion, a good second run takes over, a random third run stays
challenger. (The whole flow → ``register_model`` path is covered in test_flow.py and below, once.)
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from tests.conftest import CONF, seeded_cache
from torchtransfer import registry
from torchtransfer.config import load_config
from torchtransfer.data.datasets import USPS_SDIST, mnist
from torchtransfer.data.splits import stratified_split
from torchtransfer.models import build_model, save_weights
from torchtransfer_cli.app import app
from torchtransfer_tasks.data import prepared_data
from torchtransfer_tasks.evaluate import evaluate_model
from torchtransfer_tasks.register import register_model
from torchtransfer_tasks.tracking import end_run, start_run
from torchtransfer_tasks.train import ModelRef

NAME = "digits"


def _train(n: int, epochs: int, seed: int = 0) -> torch.nn.Module:
    """A LeNet trained on ``n`` real MNIST images (class-stratified) with plain SGD: quality set by n, epochs."""
    torch.manual_seed(seed)
    model = build_model("lenet", 10, seed)
    if epochs == 0:
        return model
    data = mnist()
    index = stratified_split(data.y, {"train": n}, seed)["train"]
    x, y = data.x[index], data.y[index]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(n, generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, archive_cache):
    tmp = tmp_path_factory.mktemp("registry")
    seeded_cache(tmp, archive_cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # MLflow puts artifacts under ./mlruns: keep them in tmp, not in the checkout
        yield load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=[
            f"cache_dir={tmp / 'cache'}", f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
            f"tuning.storage=sqlite:///{tmp / 'optuna.db'}", "device=cpu", f"registry.model_name={NAME}"])


def trained_models(folder: Path) -> dict[str, ModelRef]:
    """weak: 3 epochs on 300 images (~40 % on USPS); good: 4 epochs on 2,000 (~70 %); random: untrained."""
    refs = {}
    for name, (n, epochs) in {"weak": (300, 3), "good": (2000, 4), "random": (0, 0)}.items():
        path = folder / f"{name}.pt"
        refs[name] = ModelRef(str(path), save_weights(_train(n, epochs), path), "lenet", 10, "test")
    return refs


@pytest.fixture(scope="module")
def models(cfg, tmp_path_factory) -> dict[str, ModelRef]:
    return trained_models(tmp_path_factory.mktemp("weights"))


def _one_run(cfg, model: ModelRef, baseline: ModelRef):
    run = start_run(cfg.record())
    data = prepared_data(cfg.data, cfg.seed, cfg.cache_path, run)
    metrics = evaluate_model(data, model, baseline, "cpu", run)
    registered = register_model(model, metrics, data, cfg.registry, run)
    end_run(run, "FINISHED")
    return run, data, metrics, registered


@pytest.fixture(scope="module")
def three_runs(cfg, models):
    return [_one_run(cfg, models[name], models["random"]) for name in ("weak", "good", "random")]


def test_better_second_run_takes_champion_and_worse_third_stays_challenger(cfg, three_runs):
    client = MlflowClient(cfg.tracking.uri)
    accs = [m["test/target_acc"] for _, _, m, _ in three_runs]
    assert accs[1] > accs[0] > accs[2], accs  # the premise: good > weak > random on the USPS test split
    assert [r.version for *_, r in three_runs] == ["1", "2", "3"]
    assert [r.decision.promote for *_, r in three_runs] == [True, True, False]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "3"

    history = registry.read_history(client, NAME)
    assert [(e["kind"], e["version"], e["from"], e["to"], e["promote"]) for e in history] == [
        ("auto", "1", None, "1", True), ("auto", "2", "1", "2", True), ("auto", "3", "2", "2", False)]
    assert history[1]["challenger_acc"] == pytest.approx(accs[1]) and history[1]["champion_acc"] == accs[0]
    assert history[2]["margin"] == pytest.approx(accs[2] - accs[1]) and "champion stays" in history[2]["reason"]
    assert all(e["who"] and e["time"].endswith("Z") and e["run_id"] for e in history)

    for (run, data, metrics, reg), entry in zip(three_runs, history, strict=True):
        parent = client.get_run(run.run_id)
        assert parent.data.tags["promotion.promoted"] == str(reg.decision.promote).lower()
        assert parent.data.tags["promotion.reason"] == entry["reason"]
        assert json.loads(_text(client, run.run_id, "promotion/decision.json")) == entry
        tags = client.get_model_version(NAME, reg.version).tags
        assert tags["run_id"] == run.run_id and tags["data.fingerprint"] == data.fingerprint
        assert tags["config.sha256"] == parent.data.tags["config.sha256"] == cfg.sha256()
        assert tags["test.fingerprint"] == parent.data.tags["test.fingerprint"]
        assert float(tags["test.target_acc"]) == pytest.approx(metrics["test/target_acc"], abs=1e-6)
        assert {"test/target_ece", "test/source_acc", "baseline/target_acc", "test/gain"} <= set(parent.data.metrics)
        assert {a.path for a in client.list_artifacts(run.run_id, "eval")} == {
            "eval/per_class.csv", "eval/confusion_matrix.png"}


def _text(client: MlflowClient, run_id: str, path: str) -> str:
    import mlflow.artifacts

    return mlflow.artifacts.load_text(f"{client.get_run(run_id).info.artifact_uri}/{path}")


def test_registering_the_same_run_again_makes_no_new_version(cfg, three_runs, models):
    client = MlflowClient(cfg.tracking.uri)
    run, data, metrics, first = three_runs[1]
    again = register_model(models["good"], metrics, data, cfg.registry, run)
    assert again.version == first.version == "2" and not again.decision.promote
    assert "already registered" in again.decision.reason and "champion" in again.aliases
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 3
    assert len(registry.read_history(client, NAME)) == 3  # no decision for a repeat
    logged = client.search_logged_models([run.experiment_id], filter_string=f"source_run_id = '{run.run_id}'")
    assert len(logged) == 1  # the model was not logged twice


def test_failed_registration_leaves_no_half_written_version(cfg, three_runs):
    client = MlflowClient(cfg.tracking.uri)
    run = client.create_run(three_runs[0][0].experiment_id)
    source = client.get_model_version(NAME, "1").source  # any logged model will do
    before = (str(client.get_model_version_by_alias(NAME, "challenger").version),
              len(client.search_model_versions(f"name = '{NAME}'")))
    with pytest.raises(Exception, match="Invalid value"):  # the store refuses the tag after the version exists
        registry.register(client, NAME, run.info.run_id, lambda: source, {"bad/../key": "x"})
    assert registry.find_version(client, NAME, run.info.run_id) is None
    after = (str(client.get_model_version_by_alias(NAME, "challenger").version),
             len(client.search_model_versions(f"name = '{NAME}'")))
    assert after == before


def test_champion_scored_on_other_test_data_is_re_evaluated_first(cfg, three_runs, models):
    client = MlflowClient(cfg.tracking.uri)
    other = cfg.model_copy(update={"seed": 1})  # other splits, so another target test split
    run, data, metrics, reg = _one_run(other, models["weak"], models["random"])
    entry = registry.read_history(client, NAME)[-1]
    champion = client.get_model_version(NAME, "2")
    assert entry["version"] == reg.version and entry["test_fingerprint"] != champion.tags["test.fingerprint"]
    assert "re-evaluated on the challenger's test split" in entry["reason"] and entry["comparable"]
    assert float(champion.tags[f"test.target_acc.on.{entry['test_fingerprint'][:16]}"]) == entry["champion_acc"]
    assert entry["champion_acc"] > entry["challenger_acc"] and not reg.decision.promote
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"


def test_cli_promote_by_hand_is_recorded_and_models_shows_the_history(cfg, three_runs):
    client, uri = MlflowClient(cfg.tracking.uri), ["--tracking-uri", cfg.tracking.uri]
    n = len(registry.read_history(client, NAME))
    result = CliRunner().invoke(app, ["promote", NAME, "1", "--reason", "rollback drill", *uri])
    assert result.exit_code == 0, result.output
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    manual = registry.read_history(client, NAME)[-1]
    assert (manual["kind"], manual["from"], manual["to"], manual["reason"]) == ("manual", "2", "1", "rollback drill")
    assert "promotion.manual.champion" in client.get_run(manual["run_id"]).data.tags
    assert CliRunner().invoke(app, ["promote", NAME, "2", "--reason", "restore", *uri]).exit_code == 0

    shown = CliRunner().invoke(app, ["models", NAME, *uri], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert f"promotion history ({n + 2} decisions)" in shown.output
    assert "rollback drill" in shown.output and "champion stays" in shown.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.output.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()}
    assert rows["2"] == "champion" and rows[max(rows, key=int)] == "challenger" and rows["1"] == "-"
    assert CliRunner().invoke(app, ["promote", NAME, "99", "--reason", "x", *uri]).exit_code == 1
    assert CliRunner().invoke(app, ["models", "nope", *uri]).exit_code == 1


def _usps_raw(cfg, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` USPS test digits as users have them: (n, 16, 16) uint8, straight from the archive."""
    from scipy.io import loadmat

    from torchtransfer.data.datasets import USPS_MEMBER

    with tarfile.open(Path(cfg.cache_dir) / "archives" / USPS_SDIST) as tar:
        mat = loadmat(io.BytesIO(tar.extractfile(USPS_MEMBER).read()))
    images = (mat["test_patterns"].T[:n].reshape(-1, 16, 16) + 1.0) / 2.0 * 255.0
    return np.round(images).astype(np.uint8), mat["test_labels"].argmax(axis=0)[:n]


FRESH = """
import json, sys
import numpy as np, mlflow
out = mlflow.pyfunc.load_model(sys.argv[1]).predict(np.load(sys.argv[2]))
orchestration = {"prefect", "torchtransfer_tasks", "torchtransfer_flows", "optuna"}
print(json.dumps({"labels": out["label"].tolist(), "columns": list(out.columns),
                  "loaded": sorted({m.split(".")[0] for m in sys.modules} & orchestration)}))
"""


def test_fresh_process_loads_the_champion_by_alias_and_reads_usps(cfg, three_runs, tmp_path):
    images, labels = _usps_raw(cfg)
    np.save(tmp_path / "usps.npy", images)  # uint8 (N, 16, 16): the model resizes and scales itself
    proc = subprocess.run([sys.executable, "-c", FRESH, f"models:/{NAME}@champion", str(tmp_path / "usps.npy")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "MLFLOW_TRACKING_URI": cfg.tracking.uri})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    accuracy = float((np.array(out["labels"]) == labels).mean())
    print(f"fresh-process champion accuracy on {len(labels)} raw USPS digits: {accuracy:.4f}")
    assert accuracy > 0.5  # chance is 0.1; the champion (good) scores ~0.7 on USPS
    assert out["columns"] == ["label", "class"] + [f"prob_{c}" for c in range(10)]
    assert out["loaded"] == []  # no Prefect, no tasks/flows, no Optuna: the logged model stands alone


def test_cli_predict_writes_a_csv_from_a_folder_or_npz(cfg, three_runs, tmp_path):
    from PIL import Image

    images, labels = _usps_raw(cfg, 40)
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    uri = ["--tracking-uri", cfg.tracking.uri]
    result = CliRunner().invoke(app, ["predict", f"models:/{NAME}@champion", str(folder), "-o",
                                      str(tmp_path / "p.csv"), *uri])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table["name"]) == [f"{i:03d}.png" for i in range(40)] and len(table.columns) == 13
    assert (table["label"].to_numpy() == labels).mean() > 0.5
    np.savez(tmp_path / "d.npz", x=images.astype(np.float32) / 255.0)
    result = CliRunner().invoke(app, ["predict", f"models:/{NAME}/2", str(tmp_path / "d.npz"), "-o",
                                      str(tmp_path / "q.csv"), *uri])
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(tmp_path / "q.csv")["label"] == table["label"]).all()
    np.save(tmp_path / "bad.npy", images.astype(np.float32))  # 0..255 floats: refused, not misread
    bad = CliRunner().invoke(app, ["predict", f"models:/{NAME}/2", str(tmp_path / "bad.npy"), *uri])
    assert bad.exit_code == 2 and "[0, 1]" in bad.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_rest_prediction(cfg, three_runs, tmp_path):
    images, labels = _usps_raw(cfg, 64)
    port, log = _free_port(), (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": cfg.tracking.uri,  # serve runs `uvicorn` from PATH
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server not healthy in 180 s"
            try:
                if urllib.request.urlopen(f"{base}/ping", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        body = json.dumps({"inputs": images.tolist()}).encode()  # ints 0..255 as JSON, (N, 16, 16)
        request = urllib.request.Request(f"{base}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    served = np.array([p["label"] for p in predictions])
    accuracy = float((served == labels).mean())
    print(f"REST /invocations: {len(served)} USPS digits, accuracy {accuracy:.4f}")
    assert len(served) == 64 and accuracy > 0.5
    assert abs(sum(v for k, v in predictions[0].items() if k.startswith("prob_")) - 1.0) < 1e-4


@pytest.mark.slow
def test_the_flow_evaluates_registers_and_records_its_decision(smoke_cfg, tmp_path, monkeypatch):
    from torchtransfer_flows.transfer import transfer_learning

    monkeypatch.chdir(tmp_path)  # artifacts (./mlruns) stay in tmp

    summary = transfer_learning(smoke_cfg)
    client, name = MlflowClient(smoke_cfg.tracking.uri), smoke_cfg.registry.model_name
    parent = client.get_run(summary.run_id)
    assert {"test/target_ece", "baseline/source_acc", "test/source_cost", "promotion/promoted"} <= set(
        parent.data.metrics)
    artifacts = {a.path for folder in ("eval", "promotion") for a in client.list_artifacts(summary.run_id, folder)}
    assert artifacts == {"eval/per_class.csv", "eval/confusion_matrix.png", "promotion/decision.json"}
    per_class = pd.read_csv(io.StringIO(_text(client, summary.run_id, "eval/per_class.csv")))
    assert list(per_class["class"]) == list(range(10)) and per_class["support"].sum() == 100

    version = client.get_model_version_by_alias(name, "champion")
    assert str(version.version) == summary.version == "1" and version.tags[registry.COMPLETE_TAG] == "true"
    assert version.tags["run_id"] == summary.run_id and version.tags["config.sha256"] == smoke_cfg.sha256()
    (entry,) = registry.read_history(client, name)
    assert entry["flow_run"] == parent.data.tags["prefect.flow_run_name"] and entry["promote"]
    assert json.loads(_text(client, summary.run_id, "promotion/decision.json")) == entry
    with registry.tracking(smoke_cfg.tracking.uri):
        import mlflow

        info = mlflow.models.get_model_info(f"models:/{name}@champion")
    assert info.signature.outputs.input_names()[:3] == ["label", "class", "prob_0"]
    assert "uint8" in info.metadata["input"]
    images, _ = _usps_raw(smoke_cfg, 8)
    out = registry.predict_uri(smoke_cfg.tracking.uri, f"models:/{name}@champion", images)
    assert len(out) == 8 and np.allclose(out.filter(like="prob_").sum(axis=1), 1.0, atol=1e-4)
    servable = registry.load_servable(f"models:/{name}@champion", smoke_cfg.tracking.uri)
    assert hasattr(servable.backbone, "features") and (servable.predict(images)[1] == out["label"]).all()
