"""``publish_summary``: the run's summary as a Prefect markdown artifact, linking to the MLflow run."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.tracking import RunRef, redact

LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"  # where `torchtransfer ui` serves a local SQLite store


def mlflow_run_url(run: RunRef) -> str:
    """The run's page in the MLflow UI: the tracking server itself, or the local UI for a file store."""
    base = redact(run.tracking_uri) if run.tracking_uri.startswith("http") else LOCAL_MLFLOW_UI
    return f"{base.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"


def summary_markdown(rows: dict[str, str], run: RunRef) -> str:
    lines = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows.items())]
    url = mlflow_run_url(run)
    local = not run.tracking_uri.startswith("http")
    note = f" (start it with `torchtransfer ui`; store {redact(run.tracking_uri)})" if local else ""
    return "\n".join([*lines, "", f"MLflow run: [{run.run_id}]({url}){note}"])


@task(cache_policy=NO_CACHE)
def publish_summary(experiment: str, rows: dict[str, str], run: RunRef) -> str:
    """Create the markdown artifact (key ``<experiment>-summary``) and return its text."""
    markdown = summary_markdown(rows, run)
    key = re.sub(r"[^a-z0-9-]+", "-", f"{experiment}-summary".lower()).strip("-")
    create_markdown_artifact(key=key, markdown=markdown, description=f"torchtransfer summary: {experiment}")
    return markdown
