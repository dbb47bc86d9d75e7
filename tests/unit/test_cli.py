"""The command line: every command documents itself with an example; `data` lists what is offline."""

import pytest
import typer
from typer.testing import CliRunner

from torchtransfer_cli.app import app
from torchtransfer_cli.data import app as data_app


def _commands(root: typer.Typer, prefix=()):
    for command in root.registered_commands:
        yield (*prefix, command.name or command.callback.__name__.rstrip("_").replace("_", "-"))
    for group in root.registered_groups:
        yield from _commands(group.typer_instance, (*prefix, group.name))


COMMANDS = list(_commands(app))


def test_the_commands_a_user_expects_exist():
    names = {" ".join(c) for c in COMMANDS}
    assert {"run", "config", "shift", "deploy", "serve", "ui", "models", "promote", "predict", "reproduce",
            "data list", "data fetch"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example" in result.output


def test_data_list_and_unknown_fetch(tmp_path):
    listing = CliRunner().invoke(data_app, ["list", "--cache-dir", str(tmp_path)], terminal_width=200)
    assert listing.exit_code == 0
    assert "mnist" in listing.output and "not fetched" in listing.output
    bad = CliRunner().invoke(data_app, ["fetch", "svhm", "--cache-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown dataset 'svhm'" in bad.output
