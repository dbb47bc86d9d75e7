"""How fast the command line answers: ``--help`` of every command and a config error, beside ``python -c pass``.

Each case runs ``--repeat`` times in a fresh subprocess (the installed ``torchtransfer`` script, as a user types
it), the cases interleaved round-robin so that a busy machine slows them all alike. The baseline is the same
interpreter starting and doing nothing (``python -c pass``) in the same run; the ratios are median / baseline
median and min / baseline min (the min is the steadier on a machine shared with other jobs). The config
error is ``torchtransfer run -c default.yaml -c bad.yaml`` (and ``config``) where bad.yaml holds a misspelt
key: it must exit 2 and name the key, or the benchmark fails.

The commands are read from the CLI itself (typer's click group), so a new command is timed without an edit.
Rows (label, commit, case, argv, seconds) replace the rows of the same ``--label`` in
``benchmarks/results/cli_timing.json``.

    .venv/bin/python benchmarks/cli_timing.py --label after [--repeat 5]
    .venv/bin/python benchmarks/cli_timing.py --docs     # the docs table from the result file (no timing)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import doctables  # noqa: E402

RESULTS = ROOT / "benchmarks/results/cli_timing.json"


def git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return commit.stdout.strip() + ("-dirty" if dirty else "")


def command_paths() -> list[list[str]]:
    """Every command and sub-command of the CLI, e.g. ``["run"]``, ``["data", "list"]``."""
    import typer

    from torchtransfer_cli.app import app

    def walk(group, prefix: list[str]) -> list[list[str]]:
        paths = []
        for name, command in sorted(group.commands.items()):
            paths.append([*prefix, name])
            if hasattr(command, "commands"):  # a group (typer's own click fork: not a click.Group)
                paths.extend(walk(command, [*prefix, name]))
        return paths

    return walk(typer.main.get_command(app), [])


def cases(script: Path, bad: Path, default: Path) -> dict[str, list[str]]:
    """case name → argv; the baseline first."""
    out = {"python -c pass": [sys.executable, "-c", "pass"], "torchtransfer --help": [str(script), "--help"]}
    for path in command_paths():
        out[f"torchtransfer {' '.join(path)} --help"] = [str(script), *path, "--help"]
    for command in ("run", "config"):
        out[f"torchtransfer {command} (config error)"] = [str(script), command, "-c", str(default), "-c", str(bad)]
    return out


def time_once(name: str, argv: list[str], cwd: Path) -> float:
    """Seconds of one run; a config error must exit 2 naming the misspelt key, anything else exit 0."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if name.endswith("(config error)"):
        assert done.returncode == 2 and "trian" in done.stderr, (argv, done.returncode, done.stderr[-500:])
    else:
        assert done.returncode == 0, (argv, done.returncode, done.stderr[-500:])
    return seconds


def markdown(rows: list[dict]) -> str:
    """One line per case, one column pair per label (median seconds, × python -c pass), labels in file order."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    by = {(r["label"], r["case"]): r for r in rows}
    cases = list(dict.fromkeys(r["case"] for r in rows))
    first = {label: next(r for r in rows if r["label"] == label) for label in labels}
    runs = "; ".join(f"{label}: commit {r['commit']}, {r['config']['repeat']} runs each" for label, r in first.items())
    head = "| case | " + " | ".join(f"{label}: median s | {label}: × `python -c pass`" for label in labels) + " |"
    lines = [f"Medians ({runs}).", "", head,
             "| --- |" + " ---: | ---: |" * len(labels)]
    for case in cases:
        cells = [(f"{by[label, case]['seconds_median']:.2f}", f"{by[label, case]['ratio_to_python']:.1f}")
                 if (label, case) in by else ("-", "-") for label in labels]
        lines.append(f"| `{case}` | " + " | ".join(f"{s} | {x}" for s, x in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", help="e.g. before / after; replaces that label's rows")
    parser.add_argument("--docs", action="store_true", help="rewrite the docs table from the results, no timing")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--default", type=Path, default=ROOT / "conf/default.yaml")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.docs:
        doctables.write("cli_timing", markdown(json.loads(args.results.read_text())["rows"]))
        return
    if not args.label:
        parser.error("--label is required to time")
    script = Path(sys.executable).parent / "torchtransfer"
    commit = git_commit()
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.yaml"
        bad.write_text("trian:\n  epochs: 1\n")  # misspelt `train`
        table = cases(script, bad, args.default)
        seconds: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.repeat):
            for name, argv in table.items():
                seconds[name].append(time_once(name, argv, Path(tmp)))
    base = statistics.median(seconds["python -c pass"])
    rows = []
    print(f"commit {commit}, {args.repeat} runs each, label {args.label!r}")
    base_min = min(seconds["python -c pass"])
    print(f"{'case':<40} {'median s':>9} {'min s':>7} {'× pass (median)':>16} {'× pass (min)':>13}")
    for name, argv in table.items():
        median = statistics.median(seconds[name])
        print(f"{name:<40} {median:9.3f} {min(seconds[name]):7.3f} {median / base:16.1f} "
              f"{min(seconds[name]) / base_min:13.1f}")
        rows.append({"label": args.label, "commit": commit, "case": name, "seconds_median": round(median, 4),
                     "seconds_min": round(min(seconds[name]), 4), "seconds": [round(s, 4) for s in seconds[name]],
                     "ratio_to_python": round(median / base, 2),
                     "ratio_to_python_min": round(min(seconds[name]) / base_min, 2),
                     "config": {"argv": [Path(a).name if a.startswith("/") else a for a in argv],
                                "repeat": args.repeat, "python": sys.version.split()[0]}})
    previous = json.loads(args.results.read_text())["rows"] if args.results.exists() else []
    kept = [r for r in previous if r["label"] != args.label]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"rows": kept + rows}, indent=1) + "\n")
    print(f"wrote {args.results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
