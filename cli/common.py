"""What the commands share: the config options, loading a config with a clean exit 2, the consoles."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from torchtransfer.config import ConfigError, ExperimentConfig, load_config

PIPE_WIDTH = 240  # columns for output that is not a terminal: a file, a pipe, a CI log


def make_console(stderr: bool = False) -> Console:
    """A console that draws at a terminal's own width, and elsewhere wide enough that no table cell is cut to
    ``chal…`` (rich would assume 80 columns)."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else max(PIPE_WIDTH, int(os.environ.get("COLUMNS") or 0))
    return Console(stderr=stderr, width=wide)


console = make_console()
err_console = make_console(stderr=True)

ConfigFiles = Annotated[list[Path], typer.Option("--config", "-c", help="YAML files, merged left to right.")]
Overrides = Annotated[list[str], typer.Option("--set", "-s", help="Dotted override KEY=VALUE (repeatable).")]
DEFAULT_CONFIG = [Path("conf/default.yaml")]


def load_or_exit(config: list[Path] | None, overrides: list[str] | None) -> ExperimentConfig:
    try:
        return load_config(*(config or DEFAULT_CONFIG), overrides=overrides or [])
    except ConfigError as exc:
        err_console.print(f"[bold red]config error[/]\n{exc}", highlight=False)
        raise typer.Exit(2) from None
