"""``torchtransfer deploy``, ``serve`` and ``ui``: scheduled deployments and the local web UIs.

Prefect is imported inside the commands (through ``flows``), never when the library is imported.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from torchtransfer_cli.common import make_console

console = make_console()
DeploymentsPath = Annotated[Path, typer.Option("--file", "-f", help="Deployments file.")]
Names = Annotated[list[str], typer.Option("--name", "-n", help="Only these deployments (repeatable).")]
DEFAULT_DEPLOYMENTS = Path("conf/deployments.yaml")


def _fail(message: str, code: int) -> typer.Exit:
    make_console(stderr=True).print(message, highlight=False)
    return typer.Exit(code)


def _require_server() -> str:
    from torchtransfer_cli.servers import configured_api_url

    url = configured_api_url()
    if not url:
        raise _fail("[bold red]no Prefect server configured:[/] set PREFECT_API_URL (e.g. "
                    "http://127.0.0.1:4200/api) or start one with `torchtransfer ui`", 2)
    return url


def deploy(file: DeploymentsPath = DEFAULT_DEPLOYMENTS, names: Names = None,
           pool: Annotated[str, typer.Option(help="Process work pool (default: the file's work_pool).")] = None,
           write_prefect_yaml: Annotated[Path, typer.Option(help="Write a prefect.yaml instead of deploying.")] = None,
           ) -> None:
    """Create or update the deployments in FILE on the Prefect server at PREFECT_API_URL.

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api torchtransfer deploy -n nightly-mnist-usps
    Then run them with: prefect worker start --pool torchtransfer
    """
    from torchtransfer.config import ConfigError
    from torchtransfer_flows import deployments

    if write_prefect_yaml is not None:
        write_prefect_yaml.write_text(deployments.prefect_yaml(file))
        console.print(f"wrote {write_prefect_yaml}; deploy it with: prefect deploy --all")
        return
    url = _require_server()
    try:
        created = deployments.deploy(file, names, pool, config_root=Path.cwd())
    except ConfigError as exc:
        raise _fail(f"[bold red]config error[/]\n{exc}", 2) from None
    except Exception as exc:  # unreachable server, refused request: say what failed
        raise _fail(f"[bold red]deploy failed[/] ({url}): {type(exc).__name__}: {exc}", 1) from None
    for name, deployment_id in created.items():
        console.print(f"deployed transfer_learning/{name}  ({deployment_id})")


def serve(file: DeploymentsPath = DEFAULT_DEPLOYMENTS, names: Names = None) -> None:
    """Serve the deployments in FILE from this process (schedules and triggered runs) until Ctrl-C.

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api torchtransfer serve -n nightly-mnist-usps
    """
    from torchtransfer.config import ConfigError
    from torchtransfer_flows import deployments

    _require_server()
    try:
        deployments.serve(file, names, config_root=Path.cwd())
    except ConfigError as exc:
        raise _fail(f"[bold red]config error[/]\n{exc}", 2) from None
    except deployments.ServeConflict as exc:
        raise _fail(f"[bold red]cannot serve[/] {exc}", 2) from None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum, frame) -> None:
    """Ctrl-C or SIGTERM (``kill``, a test's or a supervisor's stop) stops both servers; by default SIGTERM
    kills Python at once and leaves the servers, in their own sessions, running. One request is enough: a
    second one must not interrupt the (bounded) stopping."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def ui(backend: Annotated[str, typer.Option(help="MLflow backend store.")] = "sqlite:///mlflow.db",
       host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless you mean it.")] = "127.0.0.1",
       prefect_port: int = 4200, mlflow_port: int = 5000) -> None:
    """Start a Prefect server and an MLflow server, print their URLs, stop both on Ctrl-C or SIGTERM.

    Example: torchtransfer ui   # then export PREFECT_API_URL=http://127.0.0.1:4200/api
    """
    from torchtransfer import keys
    from torchtransfer_cli.servers import local_ui

    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        with local_ui(backend, host, prefect_port, mlflow_port) as servers:
            for server in servers:
                console.print(f"{server.name:8s} {server.url}", highlight=False)
            # MLflow 3's UI opens a GenAI overview unless told the training view (its own sidebar switch)
            console.print(f"training runs: {servers[1].url}/#/experiments?{keys.UI_TRAINING_VIEW}", highlight=False)
            console.print(f"export PREFECT_API_URL={servers[0].url}/api  MLFLOW_TRACKING_URI={servers[1].url}")
            console.print("Ctrl-C stops both.")
            while all(s.process.poll() is None for s in servers):
                time.sleep(1)
    except KeyboardInterrupt:  # raised in the block or while a server was starting: local_ui stopped them
        console.print("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    for command in (deploy, serve, ui):
        app.command()(command)
