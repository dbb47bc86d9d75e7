"""Speed table: ``learner.fit`` vs a bare PyTorch loop, and feature extraction with vs without the feature cache.

    .venv/bin/python benchmarks/learner.py [--images 2000] [--epochs 3] [--repeats 3]

1. Training throughput (images/s) on the same model, data (real MNIST, in memory), optimiser (SGD, momentum
   0.9), batch size and batch order: the bare loop is ``randperm`` → index → forward → cross-entropy →
   backward → step. Runs alternate and each side keeps its best of ``--repeats`` (the machine is shared).
   Target: bare / learner ≤ 1.10.
2. Feature extraction (frozen trunk, head only) for ``--fe-epochs`` epochs with the feature cache (the trunk
   runs once) vs without (the trunk runs every epoch). Target: ≥ 10× faster.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchtransfer import models, transfer_learner
from torchtransfer.data import datasets  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fe-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbones", nargs="+", default=["lenet", "resnet18"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mnist = datasets.mnist()
    data = mnist.subset(torch.arange(args.images), "mnist")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; {args.images} MNIST images "
          f"28×28, batch {args.batch_size}; best of {args.repeats} alternating runs")
    print("\n| model | bare loop (img/s) | learner.fit (img/s) | bare / learner (≤ 1.10) |")
    print("| --- | --- | --- | --- |")
    for backbone in args.backbones:
        bare, ours = throughput(backbone, data, args.epochs, args.batch_size, args.repeats)
        print(f"| {backbone} | {bare:,.0f} | {ours:,.0f} | {bare / ours:.3f} |", flush=True)
    print(f"\n| model | epoch, no cache (s) | epoch, cached (s) | epoch speed-up (≥ 10×) | {args.fe_epochs} epochs "
          "incl. caching: no cache / cached (s) | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backbone in args.backbones:
        (plain, plain_epoch), (cached, cached_epoch) = feature_cache(backbone, data, args.fe_epochs, args.batch_size)
        print(f"| {backbone} | {plain_epoch:.3f} | {cached_epoch:.4f} | {plain_epoch / cached_epoch:.0f}× "
              f"| {plain:.2f} / {cached:.2f} | {plain / cached:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
