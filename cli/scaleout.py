"""``torchtransfer tune-worker``: one more trial worker on the experiment's shared Optuna study."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from torchtransfer_cli.common import ConfigFiles, Overrides, load_or_exit, make_console

console, err_console = make_console(), make_console(stderr=True)


def tune_worker(
    config: ConfigFiles = None,
    overrides: Overrides = None,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Trials this worker runs.")] = 1,
    worker: Annotated[str, typer.Option(help="This worker's name on its trials (default host-pid).")] = "",
) -> None:
    """Join the study of the same config (by its storage URL) from this machine and run N trials.

    Example: torchtransfer tune-worker -c my.yaml --set tuning.storage=postgresql://u:pw@db/optuna -n 4
    """
    cfg = load_or_exit(config, overrides)
    if cfg.tuning.storage.startswith("sqlite:"):
        err_console.print(f"[bold red]config error[/]\ntuning.storage {cfg.tuning.storage!r} is SQLite: other "
                          "workers cannot share it. Use postgresql://... or journal:///shared/path", highlight=False)
        raise typer.Exit(2)
    if worker:
        os.environ["TORCHTRANSFER_WORKER"] = worker
    from torchtransfer.config import ConfigError
    from torchtransfer.uris import redact
    from torchtransfer_flows.scaleout import tune_worker as worker_flow

    try:
        report = worker_flow(cfg, trials)
    except ConfigError as exc:  # preflight: nothing was started
        err_console.print(f"[bold red]config error[/]\n{redact(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:
        err_console.print(f"[bold red]worker failed:[/] {type(exc).__name__}: {redact(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"worker {report.worker}: ran {report.n_trials_run} trials of study {report.study_name} "
                  f"(MLflow run {report.run_id}); study now {report.counts}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("tune-worker")(tune_worker)
