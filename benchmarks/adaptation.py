"""Quality table: target test accuracy of every adaptation method, both directions, mean ± std over seeds.

Protocol (ADDA, CVPR 2017): the default data (2,000 MNIST / 1,800 USPS training images; target training labels
hidden), the source model pretrained on labelled source data exactly as the flow does (``pretrain`` section),
then fine-tuned from it with each method; model selection (best epoch) on the small labelled target
validation split only; the target test split is read once per selection rule, at the end.

Each run makes two picks of the same training run (selection does not change training): the best epoch by the
200 labelled target validation images (``acc``), and the best by the flow's label-free objective, information
maximisation on 500 seeded unlabelled target training images (``tuning.objective: im``; ``acc_label_free``),
which never reads a target label: the protocol of a user with no labelled target image at all.

    .venv/bin/python benchmarks/adaptation.py                       # everything (1 CPU thread: about 75 min)
    .venv/bin/python benchmarks/adaptation.py --methods none dann --seeds 0 --directions mnist_usps

Each finished run is appended to ``--results`` (JSONL, with the commit, the library's source hash and the full
config) and skipped next time by the same library code, so partial runs add up. The table holds only the rows
of the library hash written last: rows of older code are never mixed in (re-run them).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import doctables  # noqa: E402
from torchtransfer import transfer_learner  # noqa: E402
from torchtransfer.config import ExperimentConfig, load_config, section_hash  # noqa: E402
from torchtransfer.data.augment import Affine  # noqa: E402
from torchtransfer.data.splits import build_pair  # noqa: E402
from torchtransfer.models import build_model  # noqa: E402
from torchtransfer.provenance import code_record, library_hash  # noqa: E402
from torchtransfer.train.adaptation import AdaptationSpec  # noqa: E402
from torchtransfer.train.recipe import adaptation_spec, target_view  # noqa: E402
from torchtransfer.train.selection import improves  # noqa: E402
from torchtransfer.tune.validators import information_maximisation  # noqa: E402

DIRECTIONS = {
    "mnist_usps": [ROOT / "conf/default.yaml"],
    "usps_mnist": [ROOT / "conf/default.yaml", ROOT / "conf/experiments/usps_to_mnist.yaml"],
}
PUBLISHED = {  # DESIGN.md: ADDA (CVPR 2017) Table 2, same 2,000/1,800 protocol; TLlib (full MNIST, LeNet)
    "source only (ADDA Table 2)": ("75.2", "57.1"), "gradient reversal (ADDA Table 2)": ("77.1", "73.0"),
    "ADDA (ADDA Table 2)": ("89.4", "90.1"), "DAN (TLlib, full MNIST)": ("86.0", "-"),
    "DANN (TLlib, full MNIST)": ("91.7", "-"), "CDAN (TLlib, full MNIST)": ("96.0", "-"),
    "CyCADA (full training sets)": ("95.6", "96.5"),
    "SHOT (tim-learn/SHOT results.md, full sets)": ("98.0", "98.4"),
}
# Each row label: the method string and what differs from the config's adaptation section for it.
# λ (ramped) per alignment loss; ``sf`` = source-free (no source image read; SHOT's lr 0.01 on a frozen head).
# SHOT's parts run at lr 0.02: at 0.05 SHOT collapsed on one seed from the first epoch (validation acc 0.17).
LABELS = {
    "none": {"method": "none", "weight": 0.0, "entropy_weight": 0.0},
    "dan": {"method": "dan", "weight": 1.0}, "dann": {"method": "dann", "weight": 0.1},
    "cdan": {"method": "cdan", "weight": 1.0}, "coral": {"method": "coral", "weight": 100.0},
    "reweight": {"method": "reweight", "weight": 0.0},
    "fixmatch": {"method": "fixmatch", "weight": 0.0},
    "shot": {"method": "shot", "weight": 0.0, "entropy_weight": 0.0, "lr": 0.02},
    "shot-sf": {"method": "shot", "weight": 0.0, "entropy_weight": 0.0, "source_free": True, "lr": 0.01},
    "dan+fixmatch": {"method": "dan+fixmatch", "weight": 1.0},
    "cdan+fixmatch": {"method": "cdan+fixmatch", "weight": 1.0},
    "dann+fixmatch": {"method": "dann+fixmatch", "weight": 0.1},
    "fixmatch+shot": {"method": "fixmatch+shot", "weight": 0.0, "entropy_weight": 0.0, "lr": 0.02},
    "dan+shot": {"method": "dan+shot", "weight": 1.0, "entropy_weight": 0.0, "lr": 0.02},
}
CODE, _ = code_record(ROOT)  # {"git.commit", "git.dirty"} of the code this process imported
LIBRARY = library_hash(ROOT)  # and the hash of its library sources


def source_model(cfg: ExperimentConfig, pair, seed: int, cache: Path) -> torch.nn.Module:
    """Pretrain (or reload) the source-only LeNet for this direction and seed, as ``pretrain_source`` does."""
    key = section_hash(cfg.model, cfg.pretrain, cfg.data.source)[:10]
    path = cache / f"source-{cfg.data.source.name}-{seed}-{key}.pt"
    model = build_model(cfg.model.backbone, cfg.model.num_classes, seed)
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    p = cfg.pretrain
    learner = transfer_learner(model, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, device="cpu")
    learner.fit(pair.source_train, p.epochs, "fine_tune", val_data=pair.source_val, batch_size=p.batch_size,
                augment=p.augment and Affine(scale=p.augment_scale), seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


class TwoPicks:
    """``learner.fit``'s selector: the label-free objective (IM on ``samples`` seeded unlabelled target training
    images, the flow's ``tuning.objective: im``) picks the epoch ``fit`` restores; the best epoch by the labelled
    target validation split is kept here (``state``), so one run gives both picks. Ties go as in ``fit`` (``improves``):
    to the later epoch with a moving average (``later_ties``), else the earlier; nothing here draws from a
    random stream training uses."""

    def __init__(self, pair, seed: int, samples: int = 500, later_ties: bool = False):
        order = torch.randperm(len(pair.target_train), generator=torch.Generator().manual_seed(seed))
        self.x = pair.target_train.x[order[:samples]]  # (n, C, H, W); the labels are never read
        self.val = pair.target_val
        self.history: list[tuple[float, float]] = []  # (IM, val acc) per epoch
        self.best: tuple[float, int] | None = None  # (val acc, epoch)
        self.state: dict | None = None
        self.later_ties = later_ties

    def __call__(self, learner) -> tuple[float, dict[str, float]]:
        score = information_maximisation(learner.predict_proba(self.x))
        acc = learner.evaluate(self.val)["acc"]
        self.history.append((round(score, 5), acc))
        if improves(acc, self.best and self.best[0], self.later_ties):
            self.best = (acc, len(self.history))
            self.state = copy.deepcopy(learner.model.state_dict())
        return score, {"val/acc": acc}


def spec_for(cfg: ExperimentConfig, label: str, args) -> AdaptationSpec:
    """The config's adaptation section with the label's method and settings (and the command line's λ, η)."""
    settings = {k: v for k, v in LABELS[label].items() if k != "lr"}
    spec = adaptation_spec(cfg.adaptation, settings.pop("method"), settings.pop("weight"))
    if args.weight is not None and spec.alignment is not None:
        settings["weight"] = args.weight
    if args.entropy_weight is not None and spec.method != "none":
        settings["entropy_weight"] = args.entropy_weight
    return replace(spec, **settings)


def adapt(cfg: ExperimentConfig, pair, source: torch.nn.Module, label: str, seed: int, args) -> dict:
    """Fine-tune a copy of ``source`` with ``label``'s method; return target test accuracy and the full
    settings (the resolved config, the adaptation spec, lr, epochs) with the commit and the seconds."""
    spec = spec_for(cfg, label, args)
    lr = LABELS[label].get("lr", args.lr)
    t = cfg.train
    learner = transfer_learner(copy.deepcopy(source), lr=lr, momentum=t.momentum,
                               weight_decay=args.weight_decay, device="cpu", schedule=t.schedule)
    picks = TwoPicks(pair, seed, later_ties=t.ema_decay is not None)
    start = time.perf_counter()
    result = learner.fit(None if spec.source_free else pair.source_train, args.epochs, "fine_tune",
                         target=pair.target_train, adaptation=spec, selector=picks,
                         batch_size=t.batch_size, augment=t.augment and Affine(scale=t.augment_scale),
                         target_augment=target_view(t), seed=seed, ema_decay=t.ema_decay)
    seconds = round(time.perf_counter() - start, 1)
    acc_label_free = learner.evaluate(pair.target_test)["acc"]  # fit restored the label-free pick
    learner.model.load_state_dict(picks.state)
    tags = CODE  # taken at start: later commits in this checkout do not relabel this run's rows
    return {"acc": learner.evaluate(pair.target_test)["acc"], "val_acc": picks.best[0],
            "best_epoch": picks.best[1], "acc_label_free": acc_label_free,
            "best_epoch_label_free": result.best_epoch, "history": picks.history,
            "seconds": seconds, "commit": tags["git.commit"],
            "dirty": tags["git.dirty"] == "true", "library": LIBRARY,
            "weight": spec.weight, "entropy_weight": spec.entropy_weight, "lr": lr, "epochs": args.epochs,
            "spec": asdict(spec), "config": cfg.model_dump(mode="json"),
            "weight_decay": args.weight_decay, "threads": args.threads}


def current(rows: list[dict]) -> list[dict]:
    """The rows of the library hash written last (none of older code, nor rows that predate the hash)."""
    last = rows[-1].get("library") if rows else None
    return [r for r in rows if last is not None and r.get("library") == last]


def table(rows: list[dict], labels: list[str], published: list[str] | None = None) -> str:
    """The Markdown table of ``current(rows)``: mean ± std over seeds per label and direction of the test
    accuracy of each pick (target val acc; the label-free IM), median seconds per run; then the ``published``
    results (default: all of ``PUBLISHED``)."""
    rows = current(rows)
    def cell(direction: str, label: str, key: str = "acc") -> str:
        accs = [100 * r[key] for r in rows if r["direction"] == direction and r["method"] == label and key in r]
        if not accs:
            return "not run"
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        return f"{statistics.mean(accs):.1f} ± {std:.1f} (n={len(accs)})"

    def seconds(label: str) -> str:  # the median: robust to a run slowed down by other jobs on the machine
        secs = [r["seconds"] for r in rows if r["method"] == label]
        return f"{statistics.median(secs):.0f}" if secs else "-"

    lines = ["| method | MNIST→USPS (%) | USPS→MNIST (%) | label-free pick: MNIST→USPS | USPS→MNIST | s per run |",
             "| --- | --- | --- | --- | --- | ---: |"]
    lines += [f"| {m} (ours) | {cell('mnist_usps', m)} | {cell('usps_mnist', m)} | "
              f"{cell('mnist_usps', m, 'acc_label_free')} | {cell('usps_mnist', m, 'acc_label_free')} | "
              f"{seconds(m)} |" for m in labels]
    lines += [f"| {m}, published | {a} | {b} | | | |" for m, (a, b) in PUBLISHED.items()
              if published is None or m in published]
    if rows:
        commits = ", ".join(sorted({r["commit"][:7] + (" (dirty)" if r["dirty"] else "") for r in rows}))
        lines += ["", f"Library {rows[-1]['library']}, commit {commits}, {rows[-1]['threads']} torch thread(s); "
                  "`benchmarks/adaptation.py --table-only`. The first two columns pick the epoch by the 200 "
                  "labelled target validation images, the label-free pick by IM on unlabelled target images; "
                  "s per run is the median over both directions and all seeds."]
    return "\n".join(lines)


def methods_of(rows: list[dict]) -> list[str]:
    """The labels the current rows hold, in ``LABELS`` order."""
    return [m for m in LABELS if any(r["method"] == m for r in current(rows))]


def table_of(rows: list[dict]) -> str:
    """The table of every method the current rows hold, with every published result (what the docs show)."""
    return table(rows, methods_of(rows))


SUMMARY_PUBLISHED = ["SHOT (tim-learn/SHOT results.md, full sets)"]  # README: the best published row only


def summary_of(rows: list[dict]) -> str:
    """The README's version: every method the current rows hold, with only the best published result."""
    return table(rows, methods_of(rows), published=SUMMARY_PUBLISHED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(LABELS), choices=list(LABELS), help="row labels (LABELS)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs; default: search.first.epochs "
                        "(the flow's trial 0)")
    parser.add_argument("--lr", type=float, default=None, help="default: search.lr.high")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--weight", type=float, default=None, help="override every alignment λ")
    parser.add_argument("--entropy-weight", type=float, default=None, help="default: adaptation.entropy_weight")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/adaptation.jsonl")
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/torchtransfer/benchmarks").expanduser())
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--docs", action="store_true", help="write the table into the docs page that holds its "
                        "markers (benchmarks/doctables.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in args.results.read_text().splitlines()] if args.results.exists() else []
    for seed in [] if args.table_only else args.seeds:  # seed by seed: a partial run covers both directions
        for direction in args.directions:
            cfg = load_config(*DIRECTIONS[direction], overrides=args.set)
            args_d = copy.copy(args)
            args_d.lr = args.lr or cfg.search.lr.high
            args_d.epochs = args.epochs or cfg.search.first.epochs
            todo = [m for m in args.methods if not any(r["direction"] == direction and r["seed"] == seed
                                                       and r["method"] == m and r.get("library") == LIBRARY
                                                       for r in done)]
            if not todo:
                continue
            pair = build_pair(cfg.data, seed, cfg.cache_path)
            source = source_model(cfg, pair, seed, args.cache)
            for label in todo:
                row = {"direction": direction, "seed": seed, "method": label,
                       **adapt(cfg, pair, source, label, seed, args_d)}
                print(json.dumps({k: v for k, v in row.items() if k not in ("config", "spec", "history")}), flush=True)
                done.append(row)
                with args.results.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    text = table_of(done) if args.table_only else table(done, list(args.methods))
    print(text)
    if args.docs:
        doctables.write("adaptation", table_of(done))
        doctables.write("adaptation_summary", summary_of(done))


if __name__ == "__main__":
    main()
