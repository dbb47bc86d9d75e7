"""Trials per minute with 1 vs 2 trial-worker processes on one Optuna study in PostgreSQL.

    eval "$(scripts/postgres.sh start)"
    .venv/bin/python benchmarks/scaleout.py [--trials 8] [--epochs 4]

Each worker is a separate process (as a ``torchtransfer tune-worker`` or a Dask worker is) that opens the study by
its storage URL and runs its share of the trials; worker ``i`` seeds its sampler with ``seed + i`` as the flow
does. The trials are ``benchmarks/tuning.py``'s: the flow's ``fit_hparams`` on the default MNIST→USPS config,
without the MLflow logging, with the strategy and method fixed (``fine_tune``, ``dann``) so that every trial costs
about the same whichever worker's sampler proposed it. Each setting gets a fresh database. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import psycopg
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.tuning import objective, setup  # noqa: E402
from torchtransfer.tune import study as studies  # noqa: E402


def _admin(pg_url: str, sql: str) -> None:
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _worker(args) -> int:
    setup_value, url, index, n, threads = args
    torch.set_num_threads(threads)
    cfg, data, source = setup_value
    study = studies.load_or_create("bench", url, cfg.seed + index, "none")
    study.optimize(objective(cfg, data, source), n_trials=n)
    return n


def run(pg_url: str, n_trials: int, epochs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        setup_value = setup(Path(tmp), [f"search.epochs.low={epochs}", f"search.epochs.high={epochs}",
                                        "search.strategy=[fine_tune]", "search.method=[dann]", "pretrain.epochs=3"])
        cores = os.cpu_count() or 1
        print(f"\n### {n_trials} trials (fine_tune + dann, {epochs} epochs each), one PostgreSQL study, {cores} cores, "
              f"torch {torch.__version__}\n")
        print("| workers | torch threads each | wall time (s) | trials per minute | complete |")
        print("| --- | --- | --- | --- | --- |")
        base = None
        for n_workers in (1, 2):
            db = f"tt_bench_{uuid.uuid4().hex[:8]}"
            _admin(pg_url, f'CREATE DATABASE "{db}"')
            url = f"{pg_url}/{db}"
            try:
                shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
                threads = max(1, cores // n_workers)
                start = time.perf_counter()
                with mp.get_context("spawn").Pool(n_workers) as pool:
                    pool.map(_worker, [(setup_value, url, i, share, threads) for i, share in enumerate(shares)])
                seconds = time.perf_counter() - start
                complete = studies.counts(optuna.load_study(study_name="bench", storage=url))["complete"]
            finally:
                _admin(pg_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            base = base or seconds
            print(f"| {n_workers} | {threads} | {seconds:.1f} | {60 * n_trials / seconds:.1f} | {complete} |")
        print(f"\nspeed-up with 2 workers: {base / seconds:.2f}× (wall time includes each process's start-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    pg_url = os.environ.get("TORCHTRANSFER_PG_URL", "").rstrip("/")
    if not pg_url:
        sys.exit('TORCHTRANSFER_PG_URL is not set: eval "$(scripts/postgres.sh start)" first')
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(pg_url, args.trials, args.epochs)


if __name__ == "__main__":
    main()
