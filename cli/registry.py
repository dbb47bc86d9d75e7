"""``torchtransfer models``, ``promote`` and ``predict``: read the registry, move an alias by hand, score images.

MLflow is imported inside the commands, so ``torchtransfer --help`` stays fast and offline defaults apply first.
Exit codes: 0 success, 1 the registry refused (unknown model/version/alias), 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from torchtransfer import keys, uris
from torchtransfer_cli.common import JsonFlag, make_console, print_json

if TYPE_CHECKING:
    from rich.table import Table

console = make_console()
TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow store; default $MLFLOW_TRACKING_URI, else the config default.")]
METRIC_COLUMNS = tuple((label, keys.as_tag(metric)) for label, metric in (
    ("target acc", keys.TARGET_ACC), ("baseline", keys.BASELINE_TARGET_ACC), ("gain", keys.GAIN),
    ("ECE", keys.TARGET_ECE), ("source acc", keys.SOURCE_ACC)))
ACC_TAG = keys.as_tag(keys.TARGET_ACC)


def _uri(tracking_uri: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the config default; credentials moved out."""
    from torchtransfer.config import TrackingConfig

    return uris.tracking_uri(TrackingConfig().uri, explicit=tracking_uri)


def _fail(message: str, code: int) -> typer.Exit:
    make_console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _client(tracking_uri: str | None, name: str):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(_uri(tracking_uri))
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise _fail(f"no registered model {name!r} in {_uri(tracking_uri)}", 1) from None
    return client


def models(name: Annotated[str, typer.Argument(help="Registered model name.")],
           tracking_uri: TrackingUri = None, json_out: JsonFlag = False) -> None:
    """Versions (aliases, key metrics) and the promotion history of a registered model.

    Example: torchtransfer models torchtransfer-mnist-usps   (--json: versions and history, for scripts)
    """
    from torchtransfer import registry

    client = _client(tracking_uri, name)
    versions = version_records(client, name)
    history = registry.read_history(client, name)
    if json_out:
        print_json({"name": name, "versions": versions, "history": history})
        return
    console.print(versions_table(name, versions))
    console.print(history_table(name, history))


def version_records(client, name: str) -> list[dict]:
    """Each version of ``name``: number, aliases, the metrics of ``METRIC_COLUMNS`` by tag key (floats or None),
    test data fingerprint, run id and whether it is complete; oldest first."""
    from torchtransfer import registry

    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    aliases: dict[str, list[str]] = {}  # search results carry no aliases; the registered model has them all
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return [{"version": int(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
             "metrics": {key: _float(v.tags.get(key)) for _, key in METRIC_COLUMNS},  # test.target_acc, ...
             "test_fingerprint": v.tags.get(keys.TEST_FINGERPRINT), "run_id": v.run_id,
             "complete": v.tags.get(registry.COMPLETE_TAG) == "true"} for v in versions]


def versions_table(name: str, versions: list[dict]) -> Table:
    from rich.table import Table

    table = Table(title=f"{name}: versions")
    for column in ("version", "aliases", *(c for c, _ in METRIC_COLUMNS), "test data", "run", "complete"):
        table.add_column(column)
    for v in versions:
        table.add_row(str(v["version"]), ", ".join(v["aliases"]) or "-", *(_num(m) for m in v["metrics"].values()),
                      (v["test_fingerprint"] or "-")[:12], (v["run_id"] or "-")[:12], "yes" if v["complete"] else "NO")
    return table


def history_table(name: str, history: list[dict]) -> Table:
    from rich.table import Table

    table = Table(title=f"{name}: promotion history ({len(history)} decisions)")
    for column in ("time (UTC)", "who", "kind", "version", "champion", "promoted", "challenger acc",
                   "champion acc", "reason"):
        table.add_column(column, overflow="fold")
    for e in history:
        table.add_row(e["time"][:19], e.get("who", "-"), e.get("kind", "-"), f"v{e.get('version')}",
                      f"{_v(e.get('from'))} → {_v(e.get('to'))}", "yes" if e.get("promote") else "no",
                      _num(e.get("challenger_acc")), _num(e.get("champion_acc")), e.get("reason", ""))
    return table


def _v(version) -> str:
    return f"v{version}" if version else "-"


def _float(value) -> float | None:
    return None if value in (None, "") else float(value)


def _num(value) -> str:
    return "-" if value in (None, "") else f"{float(value):.4f}"


def promote(name: Annotated[str, typer.Argument(help="Registered model name.")],
            version: Annotated[str, typer.Argument(help="Version to point the alias at.")],
            reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")],
            alias: Annotated[str, typer.Option("--alias", help="Alias to move.")] = "champion",
            tracking_uri: TrackingUri = None) -> None:
    """Move an alias by hand (no gate); the decision is recorded in the history and on the version's run.

    Example: torchtransfer promote torchtransfer-mnist-usps 3 --reason "rollback: v4 mislabels 7s"
    """
    import json

    from mlflow.exceptions import MlflowException

    from torchtransfer import registry

    if not reason.strip():
        raise _fail("--reason must say why (it goes into the promotion history)", 2)
    client = _client(tracking_uri, name)
    try:
        target = client.get_model_version(name, version)
    except MlflowException:
        raise _fail(f"{name} has no version {version!r}", 1) from None
    before = registry.by_alias(client, name, alias)
    acc = lambda v: float(v.tags[ACC_TAG]) if v and ACC_TAG in v.tags else None  # noqa: E731
    entry = {"kind": "manual", "alias": alias, "version": str(version), "run_id": target.run_id,
             "from": str(before.version) if before else None, "to": str(version), "promote": True, "reason": reason,
             "challenger_acc": acc(target), "champion_acc": acc(before),
             "test_fingerprint": target.tags.get(keys.TEST_FINGERPRINT)}
    entry = registry.move_alias(client, name, alias, str(version), entry)
    if target.run_id:
        client.log_text(target.run_id, json.dumps(entry, indent=2, sort_keys=True),
                        f"promotion/manual-{entry['time'].replace(':', '')}.json")
        client.set_tag(target.run_id, f"promotion.manual.{alias}", f"{entry['time']} {entry['who']}: {reason}")
    console.print(f"{name}: alias {alias} {_v(entry['from'])} → v{version} ({reason})", highlight=False)


def predict(model_uri: Annotated[str, typer.Argument(help="e.g. models:/NAME@champion or models:/NAME/3")],
            input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Image folder, .npy or .npz.")],
            output: Annotated[Path, typer.Option("--output", "-o", help="Predictions CSV.")] = Path(
                "predictions.csv"),
            tracking_uri: TrackingUri = None,
            on_bad_image: Annotated[str, typer.Option(
                "--on-bad-image", help="An undecodable or truncated image in a folder: skip (named and counted) "
                                       "| error (refuse the folder, exit 2), as data.on_bad_image.")] = "skip") -> None:
    """Predict the images in INPUT with a registered model; write ``name,label,class,prob_*`` rows to a CSV.

    A folder is read as a domain folder is (loose images and class sub-folders, any size and mode), each image
    brought to the model's input by the code that prepared its training images. One row per readable image;
    an unreadable one is skipped and counted (``--on-bad-image error`` refuses the folder instead).

    Example: torchtransfer predict models:/torchtransfer-mnist-usps@champion digits/ -o preds.csv
    """
    if on_bad_image not in ("skip", "error"):
        raise _fail(f"--on-bad-image {on_bad_image!r}: expected skip or error", 2)
    from torchtransfer import registry
    from torchtransfer.data.images import ImageError
    from torchtransfer.data.manifest import DataError
    from torchtransfer.registry.serving import read_images, read_model_inputs

    uri = _uri(tracking_uri)
    try:
        shape = registry.input_shape(uri, model_uri) if input_path.is_dir() else None
    except Exception as exc:
        raise _fail(f"{model_uri}: {type(exc).__name__}: {exc}", 1) from None
    skipped: list[str] = []
    try:
        if shape:
            channels, size, resize = shape
            names, images, skipped = read_model_inputs(input_path, channels, size, on_bad=on_bad_image,
                                                       resize=resize)
        else:
            names, images = read_images(input_path)
    except ImageError as exc:
        hint = " (--on-bad-image skip would skip it)" if on_bad_image == "error" else ""
        raise _fail(f"{exc}{hint}", 2) from None
    except (ValueError, FileNotFoundError, DataError) as exc:
        raise _fail(str(exc), 2) from None
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        console.print(f"{input_path}: skipped {len(skipped)} unreadable image(s): {shown} "
                      "(--on-bad-image error refuses them)", highlight=False)
    try:
        table = registry.predict_uri(uri, model_uri, images)
    except ValueError as exc:
        raise _fail(f"{input_path}: {exc}", 2) from None
    except Exception as exc:
        raise _fail(f"{model_uri}: {type(exc).__name__}: {exc}", 1) from None
    table.insert(0, "name", names)
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    column = "class" if "class" in table else "label"
    counts = table[column].value_counts().sort_index().to_dict()
    console.print(f"{len(table)} images → {output}; {column} counts {counts}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("promote")(promote)
    app.command("predict")(predict)
