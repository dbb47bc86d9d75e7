"""The ``torchtransfer`` command line. Exit codes: 0 success, 1 a failed run, 2 a config error.

Importing this module loads typer and rich alone: every command imports what it needs (pydantic, torch,
Prefect, MLflow) in its body, so ``--help`` and a config error answer fast (benchmarks/cli_timing.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from torchtransfer_cli.common import ConfigFiles, Overrides, console, err_console, load_or_exit

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(help="Transfer learning for PyTorch as a tracked, reproducible Prefect flow.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def summary_table(summary) -> Table:
    from rich.table import Table

    table = Table(title=f"torchtransfer · {summary.experiment}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for label, value in summary.rows().items():
        table.add_row(label, value)
    return table


@app.command()
def run(config: ConfigFiles = None, overrides: Overrides = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only (scheduled runs).")] = False) -> None:
    """Run the whole flow: data → shift → tuning → fine-tuning → evaluation → registry.

    Without -c it runs the packaged default experiment (MNIST → USPS); the stores (mlflow.db, optuna.db) land in
    the current folder. Example: torchtransfer run -c conf/experiments/usps_to_mnist.yaml --set tuning.n_trials=4
    """
    cfg = load_or_exit(config, overrides)
    if quiet:
        _quiet()
    from torchtransfer.config import ConfigError
    from torchtransfer.uris import redact
    from torchtransfer_cli.progress import bars
    from torchtransfer_cli.servers import check_prefect_api  # Prefect is imported only when a flow runs
    from torchtransfer_flows.transfer import transfer_learning

    try:
        check_prefect_api()
        with bars(enabled=not quiet):  # rich bars on a terminal; the log lines alone elsewhere
            summary = transfer_learning(cfg)
    except ConfigError as exc:  # preflight found a mistake before anything was created: exit 2, as for config
        err_console.print(f"[bold red]config error[/]\n{redact(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:  # the flow has logged the traceback; say what failed and exit 1
        err_console.print(f"[bold red]run failed:[/] {type(exc).__name__}: {redact(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(summary_table(summary))


def _quiet() -> None:
    """Only warnings and errors: per-epoch and per-trial progress, Prefect's and MLflow's info lines go."""
    import os

    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ["PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL"] = "WARNING"
    for name in ("torchtransfer", "mlflow", "optuna", "prefect"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command("config")
def show_config(config: ConfigFiles = None, overrides: Overrides = None,
                schema: Annotated[bool, typer.Option(help="Print the JSON schema instead.")] = False) -> None:
    """Print the resolved config as YAML (or the config's JSON schema with --schema).

    Example: torchtransfer config -c conf/experiments/usps_to_mnist.yaml --set seed=3
    """
    import json

    import yaml

    from torchtransfer.config import ExperimentConfig

    if schema:
        console.print_json(json.dumps(ExperimentConfig.model_json_schema()))
        return
    cfg = load_or_exit(config, overrides)
    console.print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), highlight=False)


def _register_commands() -> None:
    from torchtransfer_cli import data as cli_data
    from torchtransfer_cli import init as cli_init
    from torchtransfer_cli import orchestration as cli_orchestration
    from torchtransfer_cli import registry as cli_registry
    from torchtransfer_cli import reproduce as cli_reproduce
    from torchtransfer_cli import scaleout as cli_scaleout
    from torchtransfer_cli import shift as cli_shift

    cli_init.register(app)
    cli_data.register(app)
    cli_orchestration.register(app)
    cli_reproduce.register(app)
    cli_registry.register(app)
    cli_shift.register(app)
    cli_scaleout.register(app)


_register_commands()


def main() -> None:
    import torchtransfer_flows  # noqa: F401  (sets the offline-quiet environment before Prefect or MLflow load)

    logging.getLogger("torchtransfer").setLevel(logging.INFO)
    app()


if __name__ == "__main__":
    main()
