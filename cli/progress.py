"""Rich progress bars for the CLI: the sink of ``torchtransfer.progress`` on a terminal.

Bars appear only when the console is a terminal (a scheduled run's log, CI and ``--quiet`` get the log lines
alone). While they show, every rich log handler (Prefect's console handler included) prints through the
bars' console, so log lines scroll above the bars instead of tearing them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from torchtransfer import progress


class RichSink:
    """``torchtransfer.progress`` sink drawing one rich bar per tracked piece of work."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars

    def start(self, description: str, total: int | None) -> Any:
        return self.bars.add_task(description, total=total)

    def advance(self, handle: Any, n: int) -> None:
        self.bars.advance(handle, n)

    def stop(self, handle: Any) -> None:
        self.bars.remove_task(handle)


def _rich_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(getattr(handler, "console", None), Console):
                found[id(handler)] = handler
    return list(found.values())


@contextmanager
def bars(console: Console | None = None, enabled: bool = True) -> Iterator[None]:
    """Show the library's progress as rich bars for the duration of the block (terminals only)."""
    console = console or Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    handlers = _rich_handlers()
    saved = [h.console for h in handlers]
    with Progress(*columns, console=console, transient=True) as shown, progress.using(RichSink(shown)):
        for handler in handlers:
            handler.console = console
        try:
            yield
        finally:
            for handler, original in zip(handlers, saved, strict=True):
                handler.console = original
