"""MNIST vs USPS (the default pair, real data): MMD², permutation p-values, proxy A-distance; prints a table.

Representations: raw pixels (784-d) and the penultimate features (500-d) of a LeNet trained on the MNIST
training split (a plain SGD loop here, so the script does not depend on the learner's options), plus a
MNIST-vs-MNIST control (two disjoint MNIST halves) that should show no shift.

    .venv/bin/python benchmarks/shift_mnist_usps.py [--samples 1000] [--permutations 1000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from torchtransfer import shift
from torchtransfer.config import load_config
from torchtransfer.data.splits import build_pair
from torchtransfer.models import build_model
from torchtransfer.shift.a_distance import proxy_a_distance


def train_source(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    """LeNet on (N, 1, 28, 28) source images; SGD(lr 0.01, momentum 0.9), batches of 64."""
    model = build_model("lenet", 10, seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model.features(x[i: i + 512]) for i in range(0, len(x), 512)])  # (N, 500)


def row(name: str, a: torch.Tensor, b: torch.Tensor, n_perm: int, seed: int) -> str:
    start = time.perf_counter()
    res = shift.permutation_test(a, b, n_permutations=n_perm, seed=seed)
    seconds = time.perf_counter() - start
    biased = shift.mmd2(a, b, bandwidth=res.bandwidth, estimator="biased")
    linear = shift.mmd2(a, b, bandwidth=res.bandwidth, estimator="linear")
    q95 = torch.tensor(res.null).quantile(0.95).item()
    pad = proxy_a_distance(a, b, seed=seed)
    return (f"| {name} | {len(a)} / {len(b)} | {res.mmd2:.4f} | {res.p_value:.4g} | {q95:.2e} | {biased:.4f} | "
            f"{linear:.4f} | {res.bandwidth:.3f} | {pad:.3f} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000, help="images per side (default config's max_samples)")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    cfg = load_config("conf/default.yaml")
    pair = build_pair(cfg.data, args.seed)
    n, gen = args.samples, torch.Generator().manual_seed(args.seed)
    xs = pair.source_train.x[torch.randperm(len(pair.source_train), generator=gen)[:n]]  # (n, 1, 28, 28)
    xt = pair.target_train.x[torch.randperm(len(pair.target_train), generator=gen)[:n]]
    ctrl = pair.source_test.x  # held-out MNIST: a second sample from the source distribution
    start = time.perf_counter()
    model = train_source(pair.source_train.x, pair.source_train.y, args.epochs, args.seed)
    acc = lambda d: (model(d.x).argmax(1) == d.y).double().mean().item()  # noqa: E731
    with torch.no_grad():
        print(f"LeNet on {len(pair.source_train)} MNIST images, {args.epochs} epochs, "
              f"{time.perf_counter() - start:.0f} s: MNIST test acc {acc(pair.source_test):.3f}, "
              f"USPS test acc {acc(pair.target_test):.3f}\n")
    print(f"B = {args.permutations} permutations, seed {args.seed}, Gaussian kernel, median-heuristic bandwidth\n")
    print("| representation | m / n | MMD² (unbiased) | p-value | null q95 | MMD² (biased) | MMD² (linear) "
          "| bandwidth l | proxy A-distance | test s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fs, ft, fc = features(model, xs), features(model, xt), features(model, ctrl)
    print(row("pixels, MNIST vs USPS", xs, xt, args.permutations, args.seed), flush=True)
    print(row("LeNet features, MNIST vs USPS", fs, ft, args.permutations, args.seed), flush=True)
    print(row("pixels, MNIST train vs MNIST test", xs, ctrl, args.permutations, args.seed), flush=True)
    print(row("LeNet features, MNIST train vs MNIST test", fs, fc, args.permutations, args.seed), flush=True)


if __name__ == "__main__":
    main()
