"""``torchtransfer shift A B``: a standalone drift check on two samples, with the flow's shift report.

A and B are each an ``.npy`` array (N, ...), an ``.npz`` archive (its ``x`` array, else its only array; an
optional ``y`` holds labels), or a folder of images (searched recursively; images in class sub-folders get
those folders as labels). Exit codes: 0 done, 1 a significant shift with ``--fail-on-shift``, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from torchtransfer_cli.common import JsonFlag, make_console, print_json

if TYPE_CHECKING:  # numpy and rich.table load when the command runs, not for --help
    import numpy as np
    from rich.table import Table


def load_samples(path: Path, *, mode: str = "L", size: tuple[int, int] | None = None,
                 ) -> tuple[np.ndarray, list[str] | None]:
    """(N, ...) samples and optional per-sample class names from an .npy/.npz file or an image folder (read
    by ``torchtransfer.data.images``, sub-folders as class names, values scaled to [0, 1])."""
    import numpy as np

    from torchtransfer.data import images

    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
        files, batch = images.read_folder(path, mode, size, recursive=True)
        classes = [f.parent.relative_to(path).as_posix() for f in files]
        return batch.astype(np.float32) / 255.0, (classes if "." not in classes else None)
    x, y = images.read_arrays(path)
    return x, ([str(v) for v in y.reshape(-1)] if y is not None else None)


def _subsample(x: np.ndarray, labels: list[str] | None, n: int, seed: int):
    import numpy as np

    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[pick], (None if labels is None else [labels[i] for i in pick])


def _class_ids(a: list[str] | None, b: list[str] | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    import numpy as np

    if a is None or b is None:
        return None, None
    names = {name: i for i, name in enumerate(sorted(set(a) | set(b)))}
    return np.array([names[v] for v in a]), np.array([names[v] for v in b])


def _table(a: Path, b: Path, report: dict) -> Table:
    from rich.table import Table

    table = Table(title=f"shift: {a} → {b}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    bw = report["bandwidth"]
    bw_text = ", ".join(f"{v:.4g}" for v in bw) if isinstance(bw, list | tuple) else f"{bw:.4g}"
    aggregated = report["test"] == "aggregated"
    rows = [
        ("test", report["test"]),
        ("samples (source, target)", f"{report['n_source']}, {report['n_target']}"),
        ("MMD² (unbiased)", f"{report['mmd2']:.6g}"),
        ("p-value", f"{report['p_value']:.4g}  (B = {report['n_permutations']}, seed {report['seed']})"),
        ("verdict", ("significant shift" if report["significant"] else "no significant shift")
         + f" at alpha = {report['alpha']:g}"),
        ("bandwidth l" + (" (the median one: MMD², null)" if aggregated else ""), bw_text),
        ("null q95", f"{report['null_quantiles'].get('q95', float('nan')):.4g}"),
        ("proxy A-distance", f"{report['a_distance']:.3f}"),
    ]
    if aggregated:
        rows.append(("each bandwidth: its own p", ", ".join(f"{l:.3g}: {p:.3g}" for l, p in zip(
            report["bandwidths"], report["p_values"], strict=True))))
    if report["per_class"]:
        worst = sorted(report["per_class"].items(), key=lambda kv: -kv[1])[:5]
        rows.append(("per-class MMD² (top 5)", ", ".join(f"{c}: {v:.4g}" for c, v in worst)))
    for row in rows:
        table.add_row(*row)
    return table


def shift(
    a: Annotated[Path, typer.Argument(help="Source sample: .npy, .npz or an image folder.")],
    b: Annotated[Path, typer.Argument(help="Target sample: .npy, .npz or an image folder.")],
    permutations: Annotated[int, typer.Option("--permutations", "-B", min=0)] = 1000,
    bandwidth: Annotated[list[float] | None, typer.Option(help="Kernel width l (repeat for a multi-kernel); "
                                                          "default: median heuristic.")] = None,
    test: Annotated[str, typer.Option(help="median: one bandwidth (median heuristic, or --bandwidth); "
                                           "aggregated: a collection of bandwidths, level corrected over "
                                           "them (MMDAgg-style).")] = "median",
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.05,
    seed: int = 0,
    max_samples: Annotated[int, typer.Option(help="Seeded subsample per side.", min=2)] = 5000,
    size: Annotated[tuple[int, int] | None, typer.Option(help="Resize images to W H.")] = None,
    mode: Annotated[str, typer.Option(help="PIL mode for images: L (grey) or RGB.")] = "L",
    json_out: JsonFlag = False,
    plots: Annotated[Path | None, typer.Option(help="Write embedding.png and null.png here.")] = None,
    fail_on_shift: Annotated[bool, typer.Option(help="Exit 1 when the shift is significant.")] = False,
) -> None:
    """Two-sample MMD² test between A and B: p-value, bandwidth, proxy A-distance, per-class MMD².

    Example: torchtransfer shift before.npy after.npy --permutations 2000 --fail-on-shift
    """
    from torchtransfer.shift import aggregated
    from torchtransfer.shift import report as shift_report
    from torchtransfer_cli.progress import bars

    try:
        try:
            aggregated.check_test(test, bandwidth or None)
        except ValueError as exc:  # name the options, not the library's arguments
            raise ValueError(f"--{exc}") from None
        (xa, la), (xb, lb) = (load_samples(p, mode=mode, size=size) for p in (a, b))
        (xa, la), (xb, lb) = _subsample(xa, la, max_samples, seed), _subsample(xb, lb, max_samples, seed + 1)
        ya, yb = _class_ids(la, lb)
        with bars():
            report, result = shift_report.analyze(xa, xb, n_permutations=permutations, bandwidth=bandwidth or None,
                                                  seed=seed, alpha=alpha, labels_x=ya, labels_y=yb, test=test)
    except ValueError as exc:
        make_console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    report.update(source=str(a), target=str(b))
    if plots:
        plots.mkdir(parents=True, exist_ok=True)
        shift_report.embedding_figure(xa, xb, names=(a.name, b.name)).savefig(plots / "embedding.png")
        shift_report.null_figure(result).savefig(plots / "null.png")
    if json_out:
        print_json(report)
    else:
        make_console().print(_table(a, b, report))
    if fail_on_shift and report["significant"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("shift")(shift)
