"""Pretrained or not, frozen or not: LeNet from scratch vs EfficientNet-Lite0 (ImageNet) on the digit pairs.

(a) ``--suite strategies``: MNIST→USPS and USPS→MNIST, per seed: LeNet trained from scratch on the source (as the
    flow does), then fine-tuned; and EfficientNet-Lite0 with its packaged ImageNet weights and a head trained on
    the source (the flow's source model for a pretrained backbone: ``pretrain.strategy: auto`` =
    feature extraction), then fine-tuned by each strategy (feature_extraction, partial, fine_tune, gradual);
    every arm with adaptation off and with conf/default.yaml's method (``dan``, λ = 1).
(b) ``--suite shots``: MNIST→USPS, per seed: feature extraction vs fine-tuning, adaptation off, with 0, 1, 5 or
    10 labelled target training images per class joining the training set (the article's rule of thumb:
    feature extraction for little data, fine-tuning for more).

Everything goes through the library's recipe (``pretrain_on_source``, ``fine_tune_plan``, ``fine_tune_with``):
model selection (best epoch) on the 200 labelled target validation images, the target test split read once per
run. Sized for one CPU thread (about 35 min for both suites): ``--image-size`` 32, ``--source-train`` and
``--target-train`` images, ``--epochs`` fine-tuning epochs (the source model: ``pretrain.epochs``); the
EfficientNet arms train without augmentation, so feature extraction without adaptation runs on cached trunk
features (``TrainPlan.cacheable``); LeNet keeps the flow's augmentation.

    .venv/bin/python benchmarks/pretrained.py                  # both suites, 3 seeds
    .venv/bin/python benchmarks/pretrained.py --suite shots --seeds 0
    .venv/bin/python benchmarks/pretrained.py --table --docs   # tables from the result file into docs/benchmarks.md

Each run is appended to ``--results`` (JSONL: commit, dirty flag, full config, seconds, threads) and skipped
when the file already holds it for the same commit and config, so a killed run continues where it stopped.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import doctables  # noqa: E402
from torchtransfer.config import ExperimentConfig, load_config  # noqa: E402
from torchtransfer.data.datasets import Domain  # noqa: E402
from torchtransfer.data.splits import DomainPair, build_pair  # noqa: E402
from torchtransfer.provenance import code_record  # noqa: E402
from torchtransfer.train.learner import TransferLearner  # noqa: E402
from torchtransfer.train.recipe import SourceTraining, fine_tune_plan, fine_tune_with, pretrain_on_source  # noqa: E402
from torchtransfer.tune.search import HParams  # noqa: E402

DIRECTIONS = {
    "mnist_usps": [ROOT / "conf/default.yaml"],
    "usps_mnist": [ROOT / "conf/default.yaml", ROOT / "conf/experiments/usps_to_mnist.yaml"],
}
ARROW = {"mnist_usps": "MNIST→USPS", "usps_mnist": "USPS→MNIST"}
STRATEGIES = ("feature_extraction", "partial", "fine_tune", "gradual")
SHOTS = (0, 1, 5, 10)
CODE, _ = code_record(ROOT)  # taken at start: later commits in this checkout do not relabel this run's rows


def arms(suite: str, directions: list[str], seeds: list[int], method: str) -> list[dict]:
    """The runs of a suite: direction, seed, backbone, strategy, adaptation method, labelled target shots."""
    if suite == "strategies":
        kinds = [("lenet", "fine_tune")] + [("efficientnet_lite0", s) for s in STRATEGIES]
        return [{"direction": d, "seed": s, "backbone": b, "strategy": st, "method": m, "shots": 0}
                for d in directions for s in seeds for b, st in kinds for m in ("none", method)]
    return [{"direction": "mnist_usps", "seed": s, "backbone": "efficientnet_lite0", "strategy": st,
             "method": "none", "shots": k} for s in seeds for k in SHOTS for st in ("feature_extraction", "fine_tune")]


def config_for(arm: dict, args) -> ExperimentConfig:
    """The experiment config of an arm: its direction's files, the benchmark's sizes, the arm's backbone."""
    sizes = [f"data.source.train={args.source_train}", "data.source.val=200", "data.source.test=100",
             f"data.target.train={args.target_train}", "data.target.val=200", f"data.target.test={args.test}",
             f"pretrain.epochs={args.pretrain_epochs}", f"seed={arm['seed']}"]
    if arm["backbone"] == "lenet":
        model = ["model.backbone=lenet", "model.pretrained=false"]
    else:
        model = ["model.backbone=efficientnet_lite0", "model.pretrained=true", f"model.image_size={args.image_size}",
                 "pretrain.augment=false", "train.augment=false"]
    return load_config(*DIRECTIONS[arm["direction"]], overrides=[*sizes, *model, *args.set])


def with_shots(pair: DomainPair, labelled: Domain, shots: int, seed: int) -> DomainPair:
    """``pair`` whose target training split keeps ``shots`` labels per class (a seeded choice) of ``labelled``
    (the same images with every label)."""
    if shots == 0:
        return pair
    gen = torch.Generator().manual_seed(seed)
    y = torch.full_like(labelled.y, -1)
    for c in labelled.y.unique():
        idx = torch.nonzero(labelled.y == c).flatten()
        keep = idx[torch.randperm(len(idx), generator=gen)[:shots]]
        y[keep] = c
    return replace(pair, target_train=Domain(labelled.name, labelled.x, y))


class Runner:
    """Builds (and memoises) the pairs and source models of the arms, and runs one arm."""

    def __init__(self, args) -> None:
        self.args = args
        self.pairs: dict[str, tuple[DomainPair, Domain]] = {}
        self.sources: dict[str, tuple[torch.nn.Module, float, float]] = {}

    def pair(self, cfg: ExperimentConfig) -> tuple[DomainPair, Domain]:
        key = json.dumps(cfg.data.model_dump(mode="json"), sort_keys=True) + str((cfg.seed, cfg.model.input_shape))
        if key not in self.pairs:
            pair = build_pair(cfg.data, cfg.seed, cfg.cache_path, cfg.model.input_shape)
            full = cfg.data.model_copy(update={"target": cfg.data.target.model_copy(update={"train_labelled": 1.0})})
            labelled = build_pair(full, cfg.seed, cfg.cache_path, cfg.model.input_shape).target_train
            self.pairs[key] = (pair, labelled)
        return self.pairs[key]

    def source(self, cfg: ExperimentConfig, pair: DomainPair) -> tuple[torch.nn.Module, float, float]:
        """(source model, its source val accuracy, its seconds), trained once per process and config."""
        key = json.dumps([cfg.model.model_dump(mode="json"), cfg.pretrain.model_dump(mode="json"), pair.fingerprint])
        if key not in self.sources:
            start = time.perf_counter()
            model, result = pretrain_on_source(SourceTraining(cfg.model, cfg.pretrain, cfg.seed, "cpu"), pair)
            self.sources[key] = (model, result.best_val_acc, round(time.perf_counter() - start, 1))
        return self.sources[key]

    def run(self, arm: dict, cfg: ExperimentConfig) -> dict:
        """Fine-tune the arm's source model by its strategy and method; the row with accuracy and seconds."""
        args = self.args
        pair, labelled = self.pair(cfg)
        pair = with_shots(pair, labelled, arm["shots"], cfg.seed)
        source, source_val, source_seconds = self.source(cfg, pair)
        lr = args.lr_lenet if arm["backbone"] == "lenet" else args.lr_pretrained
        weight = 0.0 if arm["method"] == "none" else args.weight
        hp = HParams(lr=lr, weight_decay=args.weight_decay, epochs=args.epochs, strategy=arm["strategy"],
                     adaptation_weight=weight, method=arm["method"])
        plan = fine_tune_plan(cfg.train, cfg.adaptation, hp, cfg.seed, "cpu")
        if arm["method"] == "none":
            plan = plan.with_(adaptation=replace(plan.adaptation, entropy_weight=0.0))
        start = time.perf_counter()
        model, result = fine_tune_with(copy.deepcopy(source), pair, plan)
        seconds = round(time.perf_counter() - start, 1)
        test = TransferLearner(model, plan.optim, device="cpu").evaluate(pair.target_test)
        return {**arm, "acc": test["acc"], "val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
                "cached_features": plan.cacheable, "seconds": seconds, "source_seconds": source_seconds,
                "source_val_acc": source_val, "hparams": hp.__dict__, "entropy_weight": plan.adaptation.entropy_weight,
                "commit": CODE["git.commit"], "dirty": CODE["git.dirty"] == "true", "threads": args.threads,
                "config": cfg.model_dump(mode="json"), "config_sha256": config_sha(arm, cfg, args)}


def config_sha(arm: dict, cfg: ExperimentConfig, args) -> str:
    """What makes a run the same run: the arm, the full config and the benchmark's fine-tuning settings."""
    fixed = {k: getattr(args, k) for k in ("lr_lenet", "lr_pretrained", "weight_decay", "epochs", "weight")}
    text = json.dumps([arm, cfg.model_dump(mode="json"), fixed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cell(rows: list[dict], key: str = "acc") -> str:
    vals = [100 * r[key] if key == "acc" else r[key] for r in rows]
    if not vals:
        return "not run"
    if key != "acc":
        return f"{statistics.mean(vals):.0f}"
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.1f} ± {std:.1f} (n={len(vals)})"


def _commits(rows: list[dict]) -> str:
    return ", ".join(sorted({r["commit"][:7] + ("+dirty" if r["dirty"] else "") for r in rows})) or "-"


def table(rows: list[dict]) -> str:
    """(a): target test accuracy (mean ± std over seeds) and mean fine-tuning seconds per arm and direction."""
    rows = [r for r in rows if r["shots"] == 0]
    kinds = [("lenet", "fine_tune")] + [("efficientnet_lite0", s) for s in STRATEGIES]
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m != "none", m))
    lines = ["| model | strategy | adaptation | MNIST→USPS (%) | s | USPS→MNIST (%) | s | commit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for backbone, strategy in kinds:
        for method in methods:
            sel = [r for r in rows if (r["backbone"], r["strategy"], r["method"]) == (backbone, strategy, method)]
            cells = []
            for d in DIRECTIONS:
                part = [r for r in sel if r["direction"] == d]
                cells += [_cell(part), _cell(part, "seconds")]
            name = "LeNet, from scratch" if backbone == "lenet" else "EfficientNet-Lite0, ImageNet"
            lines.append(f"| {name} | {strategy} | {method} | {' | '.join(cells)} | {_commits(sel)} |")
    return "\n".join(lines)


def shots_table(rows: list[dict]) -> str:
    """(b): MNIST→USPS, adaptation off: feature extraction vs fine-tuning per labelled target images per class."""
    rows = [r for r in rows if r["direction"] == "mnist_usps" and r["method"] == "none"
            and r["backbone"] == "efficientnet_lite0" and r["strategy"] in ("feature_extraction", "fine_tune")]
    lines = ["| labelled target images per class | feature_extraction (%) | s | fine_tune (%) | s | commit |",
             "| --- | --- | --- | --- | --- | --- |"]
    for k in SHOTS:
        fe = [r for r in rows if r["shots"] == k and r["strategy"] == "feature_extraction"]
        ft = [r for r in rows if r["shots"] == k and r["strategy"] == "fine_tune"]
        lines.append(f"| {k} | {_cell(fe)} | {_cell(fe, 'seconds')} | {_cell(ft)} | {_cell(ft, 'seconds')} | "
                     f"{_commits(fe + ft)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", nargs="+", default=["strategies", "shots"], choices=["strategies", "shots"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    parser.add_argument("--image-size", type=int, default=32, help="EfficientNet input size (LeNet: 28)")
    parser.add_argument("--source-train", type=int, default=600, help="labelled source training images")
    parser.add_argument("--target-train", type=int, default=600, help="target training images (labels hidden)")
    parser.add_argument("--test", type=int, default=1000, help="target test images")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=15, help="source model epochs")
    parser.add_argument("--lr-lenet", type=float, default=0.05)
    parser.add_argument("--lr-pretrained", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--weight", type=float, default=1.0, help="alignment weight λ of the adapted arms")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/pretrained.jsonl")
    parser.add_argument("--table", action="store_true", help="only print the tables from the result file")
    parser.add_argument("--docs", action="store_true", help="write the tables into docs/benchmarks.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in args.results.read_text().splitlines()] if args.results.exists() else []
    have = {(r["commit"], r["config_sha256"]) for r in done}
    runner = Runner(args)
    method = load_config(ROOT / "conf/default.yaml").adaptation.method
    todo = [] if args.table else [a for s in args.suite for a in arms(s, args.directions, args.seeds, method)]
    start = time.perf_counter()
    for arm in todo:
        cfg = config_for(arm, args)
        if (CODE["git.commit"], config_sha(arm, cfg, args)) in have:
            continue
        row = runner.run(arm, cfg)
        have.add((row["commit"], row["config_sha256"]))
        done.append(row)
        with args.results.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k not in ("config", "hparams")}), flush=True)
    if todo:
        print(f"wall {time.perf_counter() - start:.0f} s", flush=True)
    print(table(done), shots_table(done), sep="\n\n")
    if args.docs:
        doctables.write("pretrained", table(done))
        doctables.write("pretrained_shots", shots_table(done))


if __name__ == "__main__":
    main()
