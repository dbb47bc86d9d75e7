"""The front page's results: the default flow and its reverse pair, run as a new user runs them, recorded.

    .venv/bin/python benchmarks/flow_results.py --work /tmp/flows     # run (a fresh cache and stores: ~15 min)
    .venv/bin/python benchmarks/flow_results.py --table --docs        # the README table from the result file
    .venv/bin/python benchmarks/flow_results.py --suite label_free --work /tmp/lf   # no target labels: im, class_ami

In ``--work`` (emptied first) it starts a ``prefect server`` (its database in ``WORK/prefect``, kept, so
``scripts/screenshots.py --work WORK`` can picture these very runs) and, from that folder, runs
``torchtransfer run`` three times with ``TORCHTRANSFER_CACHE=WORK/cache`` (nothing fetched or trained before):
the packaged default (MNIST → USPS), ``conf/experiments/usps_to_mnist.yaml``, and the default again (its data
and source model now cached, its study complete). Each run appends one row to ``benchmarks/results/flow.jsonl``
with its commit, config hash and resolved config, MLflow run and Prefect flow run, wall seconds and metrics; the
table shows the rows of the newest commit on file only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import doctables  # noqa: E402

RESULTS = ROOT / "benchmarks/results/flow.jsonl"
NO_LABELS = ["--set", "data.target.val=0"]
SUITES = {  # suite → (result file, docs table, runs: (direction, what the run is, flags))
    "front": (RESULTS, "flow_results", [
        ("MNIST→USPS", "fresh cache", []),
        ("USPS→MNIST", "fresh cache", ["-c", str(ROOT / "conf/experiments/usps_to_mnist.yaml")]),
        ("MNIST→USPS", "re-run: data, source model and study cached", [])]),
    "label_free": (ROOT / "benchmarks/results/label_free_flow.jsonl", "label_free_flow", [
        ("MNIST→USPS", "no target labels, objective im", [*NO_LABELS, "--set", "tuning.objective=im"]),
        ("MNIST→USPS", "no target labels, objective class_ami", [*NO_LABELS, "--set", "tuning.objective=class_ami"])]),
}
METRICS = ["baseline/target_acc", "test/target_acc", "test/source_acc", "test/target_ece", "shift/mmd2",
           "shift/p_value", "tuning/best_value", "tuning/n_complete", "tuning/n_pruned"]


def run_flow(work: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """``torchtransfer run ARGS`` in ``work``; (wall seconds, CPU seconds of that process, the id of the parent
    run it created). CPU seconds barely change when other jobs share the machine; wall seconds do."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    before = _parents(client)
    start, cpu = time.perf_counter(), _child_cpu()
    subprocess.run([str(Path(sys.executable).parent / "torchtransfer"), "run", "--quiet", *args], cwd=work,
                   env=env, check=True)
    seconds, cpu = time.perf_counter() - start, _child_cpu() - cpu
    (new,) = set(_parents(client)) - set(before)
    return seconds, cpu, new


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parents(client) -> list[str]:
    if not (Path(client.tracking_uri.removeprefix("sqlite:///"))).exists():
        return []
    ids = [e.experiment_id for e in client.search_experiments()]
    return [r.info.run_id for r in client.search_runs(ids, "tags.`prefect.flow_run_id` != ''")]


def record(work: Path, label: str, cache: str, seconds: tuple[float, float], run_id: str, load: float) -> dict:
    """One result row: what ran (commit, config), where it is (MLflow run, Prefect flow run), what it measured."""
    import yaml
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    run = client.get_run(run_id)
    resolved = yaml.safe_load(Path(client.download_artifacts(run_id, "config/resolved.yaml", str(work))).read_text())
    tags = run.data.tags
    return {"direction": label, "cache": cache, "experiment": resolved["experiment"], "seconds": round(seconds[0], 1),
            "cpu_seconds": round(seconds[1], 1),
            "commit": tags.get("git.commit"), "dirty": tags.get("git.dirty"),
            "config_sha256": tags.get("config.sha256"),
            "run_id": run_id, "run_name": run.info.run_name, "flow_run": tags.get("prefect.flow_run_name"),
            "date": time.strftime("%Y-%m-%d", time.gmtime(run.info.start_time / 1000)),
            "load_1min": round(load, 2), "cpus": os.cpu_count(),
            "metrics": {k: run.data.metrics[k] for k in METRICS if k in run.data.metrics}, "config": resolved}


def table(rows: list[dict]) -> str:
    """The Markdown table of the newest commit's rows."""
    newest = [r for r in rows if r["commit"] == rows[-1]["commit"]]
    lines = ["| experiment | run | source-only → tuned target test acc | MMD² (pixels), p | trials complete / "
             "pruned | CPU time | wall time |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in newest:
        m = r["metrics"]
        lines.append(f"| {r['direction']} (`{r['experiment']}`) | {r['cache']} | "
                     f"{100 * m['baseline/target_acc']:.1f} % → **{100 * m['test/target_acc']:.1f} %** | "
                     f"{m['shift/mmd2']:.4f}, {m['shift/p_value']:.4f} | "
                     f"{m['tuning/n_complete']:.0f} / {m['tuning/n_pruned']:.0f} | "
                     f"{_minutes(r['cpu_seconds'])} | {_minutes(r['seconds'])} |")
    last = newest[-1]
    dirty = " (uncommitted changes)" if any(r["dirty"] == "true" for r in newest) else ""
    loads = ", ".join(f"{r.get('load_1min', float('nan')):.1f}" for r in newest)
    lines.append(f"\nSeed {last['config']['seed']}, {newest[0]['date']}, commit {last['commit'][:7]}{dirty}, "
                 f"{last.get('cpus', '?')} CPUs shared with other jobs (load average at the end of each run: "
                 f"{loads}; the CPU time of the `torchtransfer run` process is what a run costs, the wall time what "
                 "it took on this shared machine); "
                 f"MLflow runs {', '.join(r['run_id'][:8] for r in newest)} (Prefect flow runs "
                 f"{', '.join(r['flow_run'] or '?' for r in newest)}); `benchmarks/flow_results.py`.")
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder to run in (emptied first)")
    parser.add_argument("--suite", choices=list(SUITES), default="front", help="front: the README table; "
                        "label_free: the default flow without target labels, per label-free objective")
    parser.add_argument("--results", type=Path, help="default: the suite's result file")
    parser.add_argument("--table", action="store_true", help="only print the table of the result file")
    parser.add_argument("--docs", action="store_true", help="write the table into the page holding its markers")
    parser.add_argument("--allow-dirty", action="store_true", help="run on a checkout with uncommitted changes "
                        "(the table then says so)")
    args = parser.parse_args()
    results, table_name, runs = SUITES[args.suite]
    args.results = args.results or results
    if not args.table:
        if args.work is None:
            parser.error("--work is required to run")
        from torchtransfer.provenance import code_record  # the git.dirty each flow run records

        if code_record(ROOT)[0]["git.dirty"] == "true" and not args.allow_dirty:
            parser.error("the checkout has uncommitted changes to tracked files (`git status`), which every row "
                         "would record as git.dirty: commit or stash them first, or pass --allow-dirty")
        from torchtransfer_cli.servers import start_prefect, stop

        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
        prefect = start_prefect(home=args.work / "prefect", log_file=args.work / "prefect.log")
        env = {**os.environ, "PREFECT_API_URL": f"{prefect.url}/api", "TORCHTRANSFER_CACHE": str(args.work / "cache")}
        env.pop("MLFLOW_TRACKING_URI", None)
        rows = []  # written when the suite ends: a run must not see the result file changed (git.dirty)
        try:
            for label, cache, flags in runs:
                wall, cpu, run_id = run_flow(args.work, flags, env)
                rows.append(record(args.work, label, cache, (wall, cpu), run_id, os.getloadavg()[0]))
                print(f"{label} ({cache}): {rows[-1]['metrics']} in {wall:.0f} s ({cpu:.0f} CPU-s)", flush=True)
        finally:
            stop(prefect.process)
            with args.results.open("a") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
    text = table([json.loads(line) for line in args.results.read_text().splitlines()])
    print(text)
    if args.docs:
        doctables.write(table_name, text)


if __name__ == "__main__":
    main()
