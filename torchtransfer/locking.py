"""One machine, several processes, one SQLite store: serialise the store's first schema creation.

Optuna and MLflow create their tables (and run their migrations) the first time a process opens a fresh
SQLite file. Two processes doing that at once race: one fails with ``table studies already exists`` or
``duplicate column name``, and an MLflow file can be left half-migrated. Two ``make run`` started together
hit it (CI did). Holding :func:`schema_lock` while a store is first opened makes the second process wait and
then find the finished schema. Server stores (PostgreSQL, HTTP) need no lock: the lock is a no-op for them.
:func:`promotion_lock` does the same for the champion decision.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def private_tmp(path: Path) -> Path:
    """A temporary file beside ``path`` that no other process or thread writes: write it, then
    ``replace(path)`` atomically. (A shared ``path.tmp`` lets two processes preparing the same cache entry
    replace each other's file away; the second ``replace`` then fails — two flows at once hit this.)"""
    return path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL; None for other URLs.

    >>> sqlite_path("sqlite:////tmp/optuna.db"), sqlite_path("sqlite:///mlflow.db"), sqlite_path("http://h")
    (PosixPath('/tmp/optuna.db'), PosixPath('mlflow.db'), None)
    >>> sqlite_path("sqlite:///:memory:") is None
    True
    """
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path).expanduser()


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.lock`` beside a SQLite file (a no-op for any other URL)."""
    with _sqlite_lock(url, ".lock"):
        yield


@contextmanager
def promotion_lock(url: str) -> Iterator[None]:
    """One champion decision at a time on a SQLite MLflow store (``<database>.promotion.lock``): two runs
    finishing together would otherwise both find "no champion yet" and both claim it. A no-op for a tracking
    server, whose clients may sit on many machines (there the last alias move wins; the history keeps both)."""
    with _sqlite_lock(url, ".promotion.lock"):
        yield


@contextmanager
def _sqlite_lock(url: str, suffix: str) -> Iterator[None]:
    path = sqlite_path(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + suffix), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
