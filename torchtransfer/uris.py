"""Store URLs: which MLflow store a command uses, and keeping passwords out of every message and log line.

One place for all of it, so the flow, ``torchtransfer models`` and ``torchtransfer reproduce`` resolve and
strip a tracking URI alike.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit


def tracking_uri(configured: str, explicit: str | None = None) -> str:
    """The MLflow store: ``explicit`` (a command-line flag) when given, else ``$MLFLOW_TRACKING_URI``, else
    ``configured`` (``tracking.uri``); any password moved out of it (``credentials_to_env``)."""
    return credentials_to_env(explicit or os.environ.get("MLFLOW_TRACKING_URI") or configured)


def credentials_to_env(uri: str) -> str:
    """``http(s)://user:password@host`` → ``http(s)://host``, with the credentials in MLflow's
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, so no error message or log line that quotes
    the URI (MLflow's own included) can carry the password."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.password is None:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username or "")
    os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact(value: Any) -> Any:
    """Hide the password of any ``scheme://user:password@host`` URL in a string.

    Example:
        >>> redact("postgresql://u:secret@db/optuna")
        'postgresql://u:***@db/optuna'
    """
    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:***@", value) if isinstance(value, str) else value


def tracking_problem(uri: str, timeout_s: float = 5.0) -> str | None:
    """Why the MLflow store ``uri`` cannot be used (None: it can), found without creating anything: a tracking
    server must answer ``/health``, a database must accept a connection; a local store is made on first use."""
    import urllib.request

    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
                return None
        except OSError as exc:
            return f"tracking store {redact(uri)}: the MLflow server does not answer ({exc})"
    if scheme in ("sqlite", "file", ""):
        return None  # a local store (and its folder) is created on first use
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(uri, connect_args={"connect_timeout": int(max(timeout_s, 1))})
        with engine.connect():
            pass
        engine.dispose()
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"tracking store {redact(uri)}: cannot connect: {reason}"
    return None
