"""``torchtransfer reproduce RUN_ID``: re-run a recorded run and compare, side by side."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

import typer

from torchtransfer import uris
from torchtransfer_cli.common import JsonFlag, make_console, print_json

console = make_console()


def reproduce(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a flow's parent run.")],
    mode: Annotated[str, typer.Option(help="final: retrain with the recorded best hyperparameters; "
                                           "full: the whole flow with a fresh study.")] = "final",
    tolerance: Annotated[float, typer.Option(help="Largest allowed metric difference (0: exact, "
                                                  "and identical weights).")] = 0.0,
    tracking_uri: Annotated[str, typer.Option(help="MLflow store of the run (default $MLFLOW_TRACKING_URI, "
                                                   "else sqlite:///mlflow.db).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Re-run RUN_ID in a sandbox and print original vs reproduced metrics; exit 1 if any differs.

    Example: torchtransfer reproduce 5272f75a905640a5af0a081caba8ccec --mode final   (--json: for scripts)
    """
    if mode not in ("final", "full"):
        make_console(stderr=True).print(f"--mode {mode!r}: expected final or full")
        raise typer.Exit(2)
    from rich.table import Table

    from torchtransfer.config import TrackingConfig
    from torchtransfer_cli.reproduction import reproduce as run_reproduction

    uri = uris.tracking_uri(TrackingConfig().uri, explicit=tracking_uri)  # credentials moved out, as the flow does
    mode_: Literal["final", "full"] = mode  # type: ignore[assignment]
    report = run_reproduction(run_id, uri, mode_, tolerance)
    if json_out:
        print_json({**asdict(report), "matches": report.matches, "tolerance": tolerance})
        if not report.matches:
            raise typer.Exit(1)
        return
    table = Table(title=f"reproduce {run_id} ({mode}) → {report.reproduced_run}")
    for column in ("", "original", "reproduced", ""):
        table.add_column(column)
    for row in report.rows:
        table.add_row(row.name, row.original, row.reproduced, "[green]=[/]" if row.ok else "[bold red]≠[/]")
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print("[green]reproduced[/]" if report.matches else f"[bold red]differs[/] (tolerance {tolerance})")
    if not report.matches:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(reproduce)
