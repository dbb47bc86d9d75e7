"""Progress of long work, reported by the library and shown by whoever runs it.

The library never prints. It wraps its long loops in :func:`track`: epochs of training, the trials of a
study, the passes of a permutation test, a dataset fetch. Nothing is shown until a front end installs a
*sink*: the CLI installs rich progress bars when it writes to a terminal (``torchtransfer_cli.progress``);
with ``--quiet``, in a scheduled run's log or in a test, there are no bars and the log lines say the same.

A sink is any object with ``start(description, total) -> handle``, ``advance(handle, n)`` and
``stop(handle)``; it is process-wide and must be thread-safe (Prefect runs tasks in threads).

>>> seen = []
>>> class Recorder:
...     def start(self, description, total): seen.append(("start", description, total)); return 7
...     def advance(self, handle, n): seen.append(("advance", handle, n))
...     def stop(self, handle): seen.append(("stop", handle))
>>> with using(Recorder()):
...     with track("epochs", total=2) as bar:
...         bar.advance(); bar.advance()
>>> seen
[('start', 'epochs', 2), ('advance', 7, 1), ('advance', 7, 1), ('stop', 7)]
>>> with track("nobody is watching", total=3) as bar:  # no sink: a no-op
...     bar.advance()

Callers that know what the work is for name it with :func:`stage`; bars started inside carry the name:

>>> with using(Recorder()), stage("trial 3"), track("epochs", total=1):
...     pass
>>> seen[-2]
('start', 'trial 3 · epochs', 1)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class Sink(Protocol):
    def start(self, description: str, total: int | None) -> Any: ...

    def advance(self, handle: Any, n: int) -> None: ...

    def stop(self, handle: Any) -> None: ...


_sink: Sink | None = None
_stage: ContextVar[str] = ContextVar("torchtransfer_progress_stage", default="")


class Bar:
    """One tracked piece of work; ``advance(n)`` says n more units are done."""

    def __init__(self, sink: Sink | None, handle: Any) -> None:
        self._sink, self._handle = sink, handle

    def advance(self, n: int = 1) -> None:
        if self._sink is not None:
            self._sink.advance(self._handle, n)


@contextmanager
def track(description: str, total: int | None = None) -> Iterator[Bar]:
    """A bar for ``total`` units of work (None: unknown, a spinner), removed when the block ends."""
    sink = _sink
    if sink is None:
        yield Bar(None, None)
        return
    label = _stage.get()
    handle = sink.start(f"{label} · {description}" if label else description, total)
    try:
        yield Bar(sink, handle)
    finally:
        sink.stop(handle)


def install(sink: Sink | None) -> Sink | None:
    """Make ``sink`` the process-wide sink (None: none); returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


@contextmanager
def using(sink: Sink) -> Iterator[Sink]:
    """Install ``sink`` for the duration of the block."""
    previous = install(sink)
    try:
        yield sink
    finally:
        install(previous)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Bars started in this block (in this thread or task) are prefixed with ``name``."""
    token = _stage.set(name)
    try:
        yield
    finally:
        _stage.reset(token)
