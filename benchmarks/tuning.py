"""Tuning benchmarks on the default MNIST→USPS data: pruning, the feature cache, parallel trial workers.

    .venv/bin/python benchmarks/tuning.py                      # all three tables
    .venv/bin/python benchmarks/tuning.py --only pruning --trials 20

Trials here are the flow's own trials (``torchtransfer.train.recipe.fine_tune_with`` on the default config's
search space, the same sampler seed and pruner) without the MLflow logging around them. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from torchtransfer.config import ExperimentConfig, load_config  # noqa: E402
from torchtransfer.data.splits import DomainPair, build_pair  # noqa: E402
from torchtransfer.train.learner import transfer_learner  # noqa: E402
from torchtransfer.train.recipe import FineTuning, SourceTraining, fine_tune_with, pretrain_on_source  # noqa: E402
from torchtransfer.tune import study as studies  # noqa: E402
from torchtransfer.tune.search import suggest_hparams  # noqa: E402

OVERRIDES: list[str] = []


def setup(work: Path, overrides: list[str]) -> tuple[ExperimentConfig, DomainPair, torch.nn.Module]:
    """The default config's data and a source model pretrained as the flow does."""
    cfg = load_config(ROOT / "conf/default.yaml", overrides=["device=cpu", *OVERRIDES, *overrides])
    pair = build_pair(cfg.data, cfg.seed, cfg.cache_path)
    source, _ = pretrain_on_source(SourceTraining(cfg.model, cfg.pretrain, cfg.seed, cfg.device), pair)
    return cfg, pair, source


def objective(cfg: ExperimentConfig, data: DomainPair, source: torch.nn.Module):
    def run(trial: optuna.Trial) -> float:
        hp = suggest_hparams(trial, cfg.search)

        def on_epoch(stats) -> None:
            trial.report(stats.val_acc, stats.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        plan = FineTuning(cfg.train, cfg.adaptation, cfg.seed, cfg.device).plan(hp)
        return fine_tune_with(copy.deepcopy(source), data, plan, on_epoch=on_epoch)[1].best_val_acc

    return run


def timed_study(cfg, data, source, url: str, name: str, pruner: str, n: int) -> tuple[float, optuna.Study]:
    study = studies.load_or_create(name, url, cfg.seed, pruner)
    start = time.perf_counter()
    study.optimize(objective(cfg, data, source), n_trials=n)
    return time.perf_counter() - start, study


def pruning(work: Path, n: int) -> None:
    cfg, data, source = setup(work, [])
    print(f"\n### Pruning: {n} trials, same seed ({cfg.seed}), default search space\n")
    print("| pruner | wall time (s) | best target val acc | complete | pruned |")
    print("| --- | --- | --- | --- | --- |")
    rows = {}
    for pruner in ("none", "median"):
        seconds, study = timed_study(cfg, data, source, f"sqlite:///{work / f'{pruner}.db'}", pruner, pruner, n)
        c = studies.counts(study)
        rows[pruner] = (seconds, study.best_value)
        print(f"| {pruner} | {seconds:.1f} | {study.best_value:.4f} | {c['complete']} | {c['pruned']} |")
    saved = 1 - rows["median"][0] / rows["none"][0]
    print(f"\nmedian pruning saves {saved:.0%} of the time; best value "
          f"{100 * (rows['median'][1] - rows['none'][1]):+.1f} points")


def feature_cache(work: Path, n: int) -> None:
    """Feature-extraction trials (no augmentation, no adaptation: the case where the cache is exact)."""
    cfg, data, source = setup(work, [])
    pair = data
    print(f"\n### Feature-extraction trials (8 epochs each, {n} trials): feature cache vs recomputing\n")
    print("| trunk features | seconds per trial |")
    print("| --- | --- |")
    per_trial = {}
    for cached in (True, False):
        start = time.perf_counter()
        for trial in range(n):
            learner = transfer_learner(copy.deepcopy(source), lr=0.01 * (trial + 1), device="cpu")
            learner.fit(pair.source_train, 8, "feature_extraction", val_data=pair.target_val, augment=False,
                        seed=cfg.seed, feature_cache=cached)
        per_trial[cached] = (time.perf_counter() - start) / n
        print(f"| {'computed once (cache)' if cached else 'recomputed every epoch'} | {per_trial[cached]:.2f} |")
    print(f"\nspeed-up: {per_trial[False] / per_trial[True]:.1f}×")


def _worker(args) -> None:
    work, url, name, n, threads = args
    torch.set_num_threads(threads)
    cfg, data, source = _SETUP
    studies.load_or_create(name, url, cfg.seed, "none").optimize(objective(cfg, data, source), n_trials=n)


def _init(setup_value) -> None:
    global _SETUP
    _SETUP = setup_value


def workers(work: Path, n: int) -> None:
    cfg, data, source = setup(work, ["search.epochs.low=4", "search.epochs.high=4"])
    print(f"\n### Parallel trial workers: the same {n} trials (4 epochs each), journal storage\n")
    print("| workers | torch threads each | wall time (s) | trials per minute |")
    print("| --- | --- | --- | --- |")
    cores = os.cpu_count() or 1
    base = None
    for n_workers in (1, 2):
        url = f"journal://{work / f'w{n_workers}.log'}"
        shares = [n // n_workers + (i < n % n_workers) for i in range(n_workers)]
        threads = max(1, cores // n_workers)
        start = time.perf_counter()
        with mp.get_context("spawn").Pool(n_workers, initializer=_init, initargs=((cfg, data, source),)) as pool:
            pool.map(_worker, [(work, url, "w", share, threads) for share in shares])
        seconds = time.perf_counter() - start
        base = base or seconds
        print(f"| {n_workers} | {threads} | {seconds:.1f} | {60 * n / seconds:.1f} |")
    print(f"\nspeed-up with 2 workers: {base / seconds:.2f}× on {cores} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["pruning", "cache", "workers"], action="append")
    parser.add_argument("--trials", type=int, default=20, help="trials in the pruning table")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. cache_dir=DIR")
    args = parser.parse_args()
    OVERRIDES.extend(args.set)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sections = args.only or ["pruning", "cache", "workers"]
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "pruning" in sections:
            pruning(work, args.trials)
        if "cache" in sections:
            feature_cache(work, 3)
        if "workers" in sections:
            workers(work, 8)


if __name__ == "__main__":
    main()
