"""``publish_summary``: the run's summary as a Prefect markdown artifact, linking to the MLflow run."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from torchtransfer import keys
from torchtransfer.report_html import curves_png, render
from torchtransfer.uris import redact
from torchtransfer_tasks.tracking import RunRef

LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"  # where `torchtransfer ui` serves a local SQLite store


def mlflow_run_url(run: RunRef) -> str:
    """The run's page in the MLflow UI: the tracking server itself, or the local UI for a file store."""
    base = redact(run.tracking_uri) if run.tracking_uri.startswith("http") else LOCAL_MLFLOW_UI
    return f"{base.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}?{keys.UI_TRAINING_VIEW}"


def summary_markdown(rows: dict[str, str], run: RunRef) -> str:
    lines = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows.items())]
    url = mlflow_run_url(run)
    local = not run.tracking_uri.startswith("http")
    note = f" (start it with `torchtransfer ui`; store {redact(run.tracking_uri)})" if local else ""
    return "\n".join([*lines, "", f"MLflow run: [{run.run_id}]({url}){note}"])


SECTIONS = {"shift": "Domain shift", "tuning": "Tuning", "eval": "Evaluation"}
CURVE_DOMAINS = {"train/loss": "source", "val/acc": "target"}  # the loss is led by source labels; val: target


def _run_figures(run: RunRef) -> dict[str, dict[str, bytes]]:
    """The PNG artifacts the stages logged, by section, plus the fine-tuning curves from the metrics."""
    client = run.client
    figures: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for folder, section in SECTIONS.items():
            for artifact in client.list_artifacts(run.run_id, folder):
                if artifact.path.endswith(".png"):
                    local = Path(client.download_artifacts(run.run_id, artifact.path, tmp))
                    figures.setdefault(section, {})[artifact.path] = local.read_bytes()
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run.run_id, key)]
               for key in ("train/loss", "val/acc")}
    if any(history.values()):
        figures["Fine-tuning curves"] = {"train/loss and val/acc per epoch": curves_png(history, CURVE_DOMAINS)}
    return figures


@task(cache_policy=NO_CACHE)
def publish_summary(experiment: str, rows: dict[str, str], run: RunRef) -> str:
    """The Prefect markdown artifact (key ``<experiment>-summary``) and the run's ``report.html``."""
    tags = run.client.get_run(run.run_id).data.tags
    decision = tags.get("promotion.reason") or tags.get("drift.reason", "no promotion decision recorded")
    report = render(f"torchtransfer · {experiment} · {run.run_id}", rows, _run_figures(run), decision,
                    {"MLflow run": mlflow_run_url(run)})
    run.client.log_text(run.run_id, report, "report.html")
    markdown = summary_markdown(rows, run)
    key = re.sub(r"[^a-z0-9-]+", "-", f"{experiment}-summary".lower()).strip("-")
    create_markdown_artifact(key=key, markdown=markdown, description=f"torchtransfer summary: {experiment}")
    return markdown
