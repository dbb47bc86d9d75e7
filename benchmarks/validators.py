"""Label-free model selection audited against the truth: which validator picks the trial a user would want?

Protocol (ADDA, CVPR 2017, as ``benchmarks/adaptation.py``): the default data, both directions; the source model
pretrained as the flow does; then ``--trials`` fine-tuning runs per direction and seed, sampled at random
(seeded) from the default search space with several adaptation methods in it (3–8 epochs instead of 5–15, to fit
a shared 2-core CPU). After every epoch of every trial
the benchmark records every validator (``torchtransfer.tune.validators``, computed on unlabelled target images
exactly as a label-free run of the flow does), the oracle (accuracy on the 200 labelled target validation
images) and, for the audit only, the target *test* accuracy. A selection rule then acts as the flow would with
``tuning.objective = <rule>``: in each trial the epoch it rates highest, across trials the trial it rates highest;
the table reports the target test accuracy of its pick. Random sampling (not TPE) keeps the trials the same for
every rule, so the rules are compared on one set of checkpoints (as Musgrave et al. 2022 compare validators on
fixed checkpoints).

    .venv/bin/python benchmarks/validators.py                     # 2 directions × 3 seeds × 20 trials
    .venv/bin/python benchmarks/validators.py --seeds 0 --trials 4  # a quick look
    .venv/bin/python benchmarks/validators.py --table             # print the table from the result file
    .venv/bin/python benchmarks/validators.py --table --docs      # and write it into docs/tuning.md

Each finished trial is appended to ``--results`` (JSONL, with the commit, the library's source hash and the full
config); a re-run skips finished trials. The table uses only rows of the newest library hash on file, so rows
from older code are never mixed in.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import sys
import time
from pathlib import Path

import optuna
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import doctables  # noqa: E402
from benchmarks.selection_table import render  # noqa: E402
from torchtransfer.config import ExperimentConfig, load_config, section_hash  # noqa: E402
from torchtransfer.data.splits import DomainPair, build_pair  # noqa: E402
from torchtransfer.models import build_model  # noqa: E402
from torchtransfer.provenance import git, library_hash  # noqa: E402
from torchtransfer.train.learner import TransferLearner  # noqa: E402
from torchtransfer.train.recipe import FineTuning, SourceTraining, pretrain_on_source  # noqa: E402
from torchtransfer.train.selection import Selector  # noqa: E402
from torchtransfer.tune.search import suggest_hparams  # noqa: E402

DIRECTIONS = {
    "mnist_usps": [ROOT / "conf/default.yaml"],
    "usps_mnist": [ROOT / "conf/default.yaml", ROOT / "conf/experiments/usps_to_mnist.yaml"],
}
METHODS = "[none,dan,dann,coral]"  # several adaptation methods in the default search space
# Sized for a shared 2-core CPU: the default space with 3–8 epochs (default 5–15) halves the cost of a trial.
SPACE = [f"search.method={METHODS}", "search.epochs.low=3", "search.epochs.high=8"]


LIBRARY, COMMIT = library_hash(ROOT), (git("rev-parse", "HEAD") or "").strip()  # the code this process imported


def source_model(cfg: ExperimentConfig, pair: DomainPair, cache: Path) -> torch.nn.Module:
    """The flow's source model (``pretrain_on_source``), cached by the sections it depends on."""
    path = cache / f"source-{section_hash(cfg.model, cfg.pretrain, cfg.data.source)[:12]}-{cfg.seed}-weights.pt"
    if path.is_file():
        model = build_model(cfg.model.backbone, cfg.model.num_classes, cfg.seed, pretrained=cfg.model.pretrained)
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    model, _ = pretrain_on_source(SourceTraining(cfg.model, cfg.pretrain, cfg.seed, "cpu"), pair)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


class AuditedSelector:
    """The flow's ``Selector`` plus the target test accuracy per epoch (recorded for the audit, never used to
    select: the learner keeps the epoch the oracle rates highest, which this benchmark re-selects per rule)."""

    def __init__(self, selector: Selector, pair: DomainPair) -> None:
        self.selector, self.test = selector, pair.target_test

    def __call__(self, learner: TransferLearner) -> tuple[float, dict[str, float]]:
        score, metrics = self.selector(learner)
        pred = learner.predict_proba(self.test.x).argmax(1)
        return score, {**metrics, "test/acc": float((pred == self.test.y).float().mean())}


def run_trial(cfg: ExperimentConfig, pair: DomainPair, source: torch.nn.Module, hp) -> list[dict[str, float]]:
    """Fine-tune a copy of ``source`` with ``hp``; every epoch's metrics (validators, oracle, test acc)."""
    plan = FineTuning(cfg.train, cfg.adaptation, cfg.seed, "cpu").plan(hp)
    selector = Selector.from_domains("target_val_acc", pair.target_train, pair.source_val, pair.source_train,
                                     pair.target_val, plan.seed)
    learner = TransferLearner(copy.deepcopy(source), plan.optim, device="cpu")
    result = learner.fit(pair.source_train, plan=plan, target=pair.target_train,
                         selector=AuditedSelector(selector, pair))
    return [{"epoch": s.epoch, **s.metrics} for s in result.history]


def run(direction: str, seed: int, n_trials: int, results: Path, cache: Path, done: set) -> None:
    cfg = load_config(*DIRECTIONS[direction], overrides=[f"seed={seed}", "device=cpu", *SPACE])
    pair = build_pair(cfg.data, cfg.seed, cfg.cache_path)
    source = source_model(cfg, pair, cache)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    config, commit, code = cfg.model_dump(mode="json"), COMMIT, LIBRARY
    for index in range(n_trials):
        trial = study.ask()
        hp = suggest_hparams(trial, cfg.search)
        if (direction, seed, index, code) in done:
            study.tell(trial, 0.0)
            continue
        start = time.perf_counter()
        epochs = run_trial(cfg, pair, source, hp)
        study.tell(trial, max(e["val/acc"] for e in epochs))
        row = {"direction": direction, "seed": seed, "trial": index, "hparams": hp.__dict__, "epochs": epochs,
               "seconds": round(time.perf_counter() - start, 1), "commit": commit, "library": code,
               "config": config}
        with results.open("a") as f:  # one line per trial; the lock lets one process per direction share it
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(row) + "\n")
        best = max(epochs, key=lambda e: e["val/acc"])
        print(f"{direction} seed {seed} trial {index}: {hp.method}/{hp.strategy} {hp.epochs} ep, "
              f"oracle {best['val/acc']:.3f}, test {best['test/acc']:.3f}, {row['seconds']} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/validators.jsonl")
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/torchtransfer/benchmarks").expanduser())
    parser.add_argument("--table", action="store_true", help="only print the table from the result file")
    parser.add_argument("--docs", action="store_true", help="write the table into the docs page that holds its "
                        "markers (benchmarks/doctables.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in args.results.read_text().splitlines()] if args.results.exists() else []
    if not args.table:
        done = {(r["direction"], r["seed"], r["trial"], r["library"]) for r in rows}
        for direction in args.directions:
            for seed in args.seeds:
                run(direction, seed, args.trials, args.results, args.cache, done)
        rows = [json.loads(x) for x in args.results.read_text().splitlines()]
    table = render(rows)
    print(table)
    if args.docs:
        doctables.write("validators", table)


if __name__ == "__main__":
    main()
