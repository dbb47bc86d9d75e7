"""Speed table: ``learner.fit`` vs a bare PyTorch loop, and feature extraction with vs without the feature cache.

    .venv/bin/python benchmarks/learner.py [--images 2000] [--epochs 3] [--repeats 3]  # run: results/learner.json
    .venv/bin/python benchmarks/learner.py --table [--docs]  # print the tables from it (and write them into docs)

1. Training throughput (images/s) on the same model, data (real MNIST, in memory), optimiser (SGD, momentum
   0.9), batch size and batch order: the bare loop is ``randperm`` → index → forward → cross-entropy →
   backward → step. Runs alternate and each side keeps its best of ``--repeats`` (the machine is shared).
   Target: bare / learner ≤ 1.10.
2. Feature extraction (frozen trunk, head only) for ``--fe-epochs`` epochs with the feature cache (the trunk
   runs once) vs without (the trunk runs every epoch). Target: ≥ 10× faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import doctables  # noqa: E402
from torchtransfer import models, transfer_learner  # noqa: E402
from torchtransfer.data import datasets  # noqa: E402
from torchtransfer.provenance import code_record  # noqa: E402

RESULTS = ROOT / "benchmarks/results/learner.json"


def bare_loop(model, x, y, epochs: int, batch_size: int, seed: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def learner_fit(model, data, epochs: int, batch_size: int, seed: int, **fit) -> None:
    transfer_learner(model, lr=0.01, momentum=0.9, device="cpu").fit(data, epochs, batch_size=batch_size, seed=seed,
                                                                     **fit)


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def throughput(backbone: str, data: datasets.Domain, epochs: int, batch_size: int, repeats: int) -> tuple[float, ...]:
    n = len(data) * epochs
    warm = data.subset(torch.arange(256))
    bare_loop(models.build_model(backbone, 10, 0), warm.x, warm.y, 1, batch_size, 0)  # warm-up, not timed
    learner_fit(models.build_model(backbone, 10, 0), warm, 1, batch_size, 0)
    bare, ours = [], []
    for r in range(repeats):
        bare.append(n / timed(bare_loop, models.build_model(backbone, 10, 0), data.x, data.y, epochs, batch_size, r))
        ours.append(n / timed(learner_fit, models.build_model(backbone, 10, 0), data, epochs, batch_size, r))
    return max(bare), max(ours)


def feature_cache(backbone: str, data: datasets.Domain, epochs: int, batch_size: int) -> list[tuple[float, float]]:
    """(total seconds, median seconds of epochs 2..N) without and with the cache."""
    out = []
    for cache in (False, True):
        model = models.build_model(backbone, 10, 0)
        stamps = [time.perf_counter()]
        total = timed(learner_fit, model, data, epochs, batch_size, 0, strategy="feature_extraction",
                      feature_cache=cache, on_epoch=lambda _, s=stamps: s.append(time.perf_counter()))
        per_epoch = sorted(b - a for a, b in zip(stamps[1:-1], stamps[2:], strict=True))
        out.append((total, per_epoch[len(per_epoch) // 2]))
    return out


def run(args) -> dict:
    """Both measurements for every backbone: the result file's content (commit, config, rows)."""
    torch.set_num_threads(args.threads)
    data = datasets.mnist().subset(torch.arange(args.images), "mnist")
    tags, _ = code_record(ROOT)
    config = {k: v for k, v in vars(args).items() if k not in ("table", "docs", "results")}
    config["torch"] = torch.__version__
    rows = []
    for backbone in args.backbones:
        bare, ours = throughput(backbone, data, args.epochs, args.batch_size, args.repeats)
        (plain, plain_epoch), (cached, cached_epoch) = feature_cache(backbone, data, args.fe_epochs, args.batch_size)
        rows.append({"backbone": backbone, "bare_img_s": bare, "learner_img_s": ours, "epoch_s": plain_epoch,
                     "cached_epoch_s": cached_epoch, "total_s": plain, "cached_total_s": cached})
        print(json.dumps(rows[-1]), flush=True)
    return {"commit": tags["git.commit"], "dirty": tags["git.dirty"], "config": config, "rows": rows}


def table(result: dict) -> str:
    """The two Markdown tables of a result file."""
    c = result["config"]
    lines = [f"torch {c['torch']}, {c['threads']} thread(s), CPU; {c['images']} MNIST images 28×28, batch "
             f"{c['batch_size']}; throughput: best of {c['repeats']} alternating runs of {c['epochs']} epochs. "
             f"Commit {result['commit'][:7]}{' (dirty)' if result['dirty'] == 'true' else ''}.", "",
             "| model | bare loop (img/s) | learner.fit (img/s) | bare / learner (≤ 1.10) |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['backbone']} | {r['bare_img_s']:,.0f} | {r['learner_img_s']:,.0f} | "
              f"{r['bare_img_s'] / r['learner_img_s']:.3f} |" for r in result["rows"]]
    lines += ["", f"| model | epoch, no cache (s) | epoch, cached (s) | epoch speed-up (≥ 10×) | {c['fe_epochs']} "
              "epochs incl. caching: no cache / cached (s) | speed-up |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['backbone']} | {r['epoch_s']:.3f} | {r['cached_epoch_s']:.4f} | "
              f"{r['epoch_s'] / r['cached_epoch_s']:.0f}× | {r['total_s']:.2f} / {r['cached_total_s']:.2f} | "
              f"{r['total_s'] / r['cached_total_s']:.1f}× |" for r in result["rows"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fe-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbones", nargs="+", default=["lenet", "resnet18"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)")
    doctables.add_result_options(parser, RESULTS)
    args = parser.parse_args()
    doctables.record_and_render(args, run, table, "learner")


if __name__ == "__main__":
    main()
