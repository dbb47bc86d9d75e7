"""The promotion history: MLflow keeps no alias history, so every decision is one registered-model tag
``torchtransfer.history.<UTC time>-<random>`` holding a JSON entry. An append never rewrites earlier entries
(no read-modify-write race, no tag-size limit on the history), and the history survives deleted versions.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

HISTORY_PREFIX = "torchtransfer.history."


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points at, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def append_history(client: MlflowClient, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Append one decision to the model's history (a new tag; earlier ones are never rewritten)."""
    entry = {"time": now(), "who": who(), **entry}
    key = f"{HISTORY_PREFIX}{entry['time']}-{uuid.uuid4().hex[:6]}"
    client.set_registered_model_tag(name, key, json.dumps(entry, sort_keys=True, default=str))
    return entry


def read_history(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Every recorded decision, oldest first."""
    tags = client.get_registered_model(name).tags
    return [json.loads(tags[k]) for k in sorted(k for k in tags if k.startswith(HISTORY_PREFIX))]


def move_alias(client: MlflowClient, name: str, alias: str, version: str, entry: dict[str, Any]) -> dict:
    """Point ``alias`` at ``version`` and record ``entry``; if recording fails, the alias is put back."""
    before = by_alias(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    try:
        return append_history(client, name, entry)
    except Exception:
        if before is not None:
            client.set_registered_model_alias(name, alias, before.version)
        else:
            client.delete_registered_model_alias(name, alias)
        raise
