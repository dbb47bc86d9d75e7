"""Level and power of the aggregated MMD test against the median-heuristic test on subtle shifts of real MNIST.

What is tested is what the flow's ``analyze_shift`` tests and steers on: the source model's penultimate
features (a LeNet, 500-d, trained here with a plain SGD loop on 1,000 MNIST images that no test sample comes
from). The other 4,000 images of the 5,000-image MNIST sample are split, seeded, into a source pool and a
target pool of 2,000 each. One repetition draws n images from each pool (without replacement), applies the
shift to the target images, and runs both tests on the same features with the same seed (so the same
permutations). Shifts (magnitudes chosen in a pilot so that the median test is not saturated at n = 200):

- ``none``: no shift (H0): the false-positive rate, beside the central 99 % binomial band at α;
- ``rotate 10°``: every target image rotated by 10° (bilinear);
- ``class prior``: target digits 0–4 drawn with weight 1.5, 5–9 with 0.5 (3 : 1);
- ``blur σ=0.7``: a 5 × 5 Gaussian blur of σ = 0.7 px (a slightly soft camera);
- ``contrast 0.9``: target intensities × 0.9 (a slightly dim camera).

A test rejects when p ≤ α. Seconds are wall time per test call (features in, p-value out), one torch thread,
the two tests interleaved so both see the same machine load.

    .venv/bin/python -m benchmarks.shift_power                    # run, write benchmarks/results/shift_power.json
    .venv/bin/python -m benchmarks.shift_power --table            # print the Markdown table from the result file
    .venv/bin/python -m benchmarks.shift_power --table --docs   # and write it into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from benchmarks import doctables
from benchmarks.shift_mnist_usps import features, train_source
from torchtransfer import shift
from torchtransfer.data.datasets import mnist
from torchtransfer.provenance import code_record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/shift_power.json"
SHIFTS = ("none", "rotate 10°", "class prior", "blur σ=0.7", "contrast 0.9")


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """(N, 1, H, W) images rotated about their centre (bilinear, zeros outside)."""
    t = math.radians(degrees)
    theta = torch.tensor([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]]).expand(len(x), 2, 3)
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def blur(x: torch.Tensor, sigma: float, radius: int = 2) -> torch.Tensor:
    """(N, 1, H, W) images through a separable (2 radius + 1)² Gaussian of σ px (zero padding)."""
    t = torch.arange(-radius, radius + 1.0)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(radius, 0))


def target_views(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The target pool's images under each shift (class prior changes the draw, not the images)."""
    return {"none": x, "rotate 10°": rotate(x, 10.0), "class prior": x, "blur σ=0.7": blur(x, 0.7),
            "contrast 0.9": 0.9 * x}


def draw(gen: torch.Generator, n: int, labels: torch.Tensor, prior: bool) -> torch.Tensor:
    """n indices into a pool; with ``prior``, digits 0–4 weighted 1.5 and 5–9 0.5 (without replacement)."""
    if not prior:
        return torch.randperm(len(labels), generator=gen)[:n]
    weights = torch.where(labels < 5, 1.5, 0.5).double()
    return torch.multinomial(weights, n, replacement=False, generator=gen)


def seed_of(*keys: int) -> int:
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def cell(name: str, n: int, reps: int, pools: dict, args) -> dict:
    """Both tests on ``reps`` draws of (n source, n shifted target): rejections, seconds, oracle power."""
    hits = {"median": 0, "aggregated": 0, "best single bandwidth": np.zeros(len(shift.AGGREGATED_SCALES))}
    seconds = {"median": 0.0, "aggregated": 0.0}
    k = SHIFTS.index(name)
    for r in range(reps):
        s = seed_of(args.seed, k, n, r)
        gen = torch.Generator().manual_seed(s)
        xs = pools["source"][draw(gen, n, pools["source_y"], False)]
        xt = pools[name][draw(gen, n, pools["target_y"], name == "class prior")]
        for test in ("median", "aggregated"):
            start = time.perf_counter()
            res = shift.two_sample_test(xs, xt, test=test, n_permutations=args.permutations, seed=s)
            seconds[test] += time.perf_counter() - start
            hits[test] += res.p_value <= args.alpha
        hits["best single bandwidth"] += np.asarray(res.p_values) <= args.alpha  # uncorrected, per bandwidth
    oracle = hits.pop("best single bandwidth")
    row = {"shift": name, "n": n, "reps": reps, **{f"{t}_power": hits[t] / reps for t in hits},
           **{f"{t}_seconds": seconds[t] / reps for t in seconds}, "oracle_power": float(oracle.max() / reps),
           "oracle_scale": float(shift.AGGREGATED_SCALES[int(oracle.argmax())])}
    if name == "none":
        row["band"] = [v / reps for v in stats.binom.interval(0.99, reps, args.alpha)]
    return row


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    data = mnist()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))
    train, src, tgt = order[:1000], order[1000:3000], order[3000:5000]
    start = time.perf_counter()
    model = train_source(data.x[train], data.y[train], args.epochs, args.seed)
    with torch.no_grad():
        views = {name: features(model, x).double() for name, x in target_views(data.x[tgt]).items()}
        pools = {"source": features(model, data.x[src]).double(), "source_y": data.y[src],
                 "target_y": data.y[tgt], **views}
    print(f"source LeNet ({args.epochs} epochs on 1,000 images) and features: {time.perf_counter() - start:.0f} s",
          flush=True)
    tags, _ = code_record(ROOT)
    config = {k: v for k, v in vars(args).items() if k not in ("table", "docs", "results")}
    config.update(scales=list(shift.AGGREGATED_SCALES), representation="source LeNet features (500-d)",
                  shifts=list(SHIFTS))
    rows = []
    for n in args.sizes:
        for name in SHIFTS:
            reps = args.null_reps if name == "none" else args.reps
            reps = reps if n < 500 else max(1, reps * args.large_share // 100)
            row = cell(name, n, reps, pools, args)
            row.update(commit=tags["git.commit"], dirty=tags["git.dirty"], config=config)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "config"}), flush=True)
    return {"commit": tags["git.commit"], "dirty": tags["git.dirty"], "config": config, "rows": rows}


def table(result: dict) -> str:
    """The Markdown table of a result file: power (FPR for none) of both tests, their ratio, seconds."""
    cfg = result["config"]
    lines = [f"Source-LeNet features of real MNIST, α = {cfg['alpha']}, B = {cfg['permutations']} permutations, "
             f"{cfg['threads']} torch thread; aggregated = l_med × {{{', '.join(f'{s:.3g}' for s in cfg['scales'])}}}. "
             f"Commit {result['commit'][:7]}{' (dirty)' if result['dirty'] == 'true' else ''}.", "",
             "| shift | n per side | reps | median: rejection rate | aggregated: rejection rate | power ratio "
             "| best single bandwidth (uncorrected) | median s/test | aggregated s/test | time ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(result["rows"], key=lambda r: (SHIFTS.index(r["shift"]), r["n"])):
        med, agg = r["median_power"], r["aggregated_power"]
        name = "none (H0: false-positive rate)" if r["shift"] == "none" else r["shift"]
        ratio = "–" if r["shift"] == "none" else (f"{agg / med:.2f}" if med else "∞" if agg else "–")
        band = f" (99 % band {r['band'][0]:.3f}–{r['band'][1]:.3f})" if "band" in r else ""
        lines.append(f"| {name} | {r['n']} | {r['reps']} | {med:.3f}{band} | {agg:.3f} | {ratio} | "
                     f"{r['oracle_power']:.2f} (× {r['oracle_scale']:.3g}) | {r['median_seconds']:.3f} | "
                     f"{r['aggregated_seconds']:.3f} | {r['aggregated_seconds'] / r['median_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500], help="images per side")
    parser.add_argument("--reps", type=int, default=100, help="repetitions per shifted cell")
    parser.add_argument("--null-reps", type=int, default=500, help="repetitions under H0 (no shift)")
    parser.add_argument("--large-share", type=int, default=40, help="percent of the repetitions at n ≥ 500")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=8, help="source LeNet training epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the table of --results; run nothing")
    parser.add_argument("--docs", action="store_true", help="write the table into the docs page that holds its "
                        "markers (benchmarks/doctables.py)")
    args = parser.parse_args(argv)
    if not args.table:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(run(args), indent=1, ensure_ascii=False) + "\n")
    text = table(json.loads(args.results.read_text()))
    print(text)
    if args.docs:
        doctables.write("shift_power", text)


if __name__ == "__main__":
    main()
