"""What the commands share: the config options, loading a config with a clean exit 2, the consoles, tables.

Nothing heavy at import time (not even pydantic): ``torchtransfer --help`` loads typer and rich alone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from torchtransfer.config import ExperimentConfig

PIPE_WIDTH = 100_000  # columns for output that is not a terminal (a file, a pipe, a CI log): never squeeze a table


def make_console(stderr: bool = False) -> Console:
    """A console that draws at a terminal's own width, and elsewhere (a file, a pipe, a CI log) as wide as each
    table needs, so that no cell is cut to ``chal…`` (rich would assume 80 columns). Text is not padded."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else max(PIPE_WIDTH, int(os.environ.get("COLUMNS") or 0))
    return Console(stderr=stderr, width=wide)


console = make_console()
err_console = make_console(stderr=True)

ConfigFiles = Annotated[list[Path], typer.Option(
    "--config", "-c", help="Experiment YAML files, merged left to right on top of the packaged default.yaml.")]
Overrides = Annotated[list[str], typer.Option("--set", "-s", help="Dotted override KEY=VALUE (repeatable).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")]


def load_or_exit(config: list[Path] | None, overrides: list[str] | None) -> ExperimentConfig:
    """The experiment of ``-c`` files over the packaged default (none: the default itself); exit 2 on an error."""
    from torchtransfer.config import ConfigError, load_experiment

    try:
        return load_experiment(*(config or ()), overrides=overrides or [])
    except ConfigError as exc:
        err_console.print(f"[bold red]config error[/]\n{exc}", highlight=False)
        raise typer.Exit(2) from None


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (plain: no colours, no wrapping), for ``--json``."""
    typer.echo(json.dumps(value, indent=2, default=str))
