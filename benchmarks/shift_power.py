"""Level and power of the aggregated MMD test against the median-heuristic test on subtle shifts of real MNIST.

Two representations, both of which the flow's ``analyze_shift`` tests: the source model's penultimate
features (a LeNet, 500-d, trained here with a plain SGD loop on 1,000 MNIST images that no test sample comes
from; what the flow steers on and the nightly drift check tests) and the raw pixels (784-d). The other 4,000
images of the 5,000-image MNIST sample are split, seeded, into a source pool and a target pool of 2,000 each.
One repetition draws n images from each pool (without replacement), applies the shift to the target images,
and runs every test on the same draws with the same seed (so the same permutations), in both
representations. Shifts (magnitudes chosen in a pilot so that the median test is not saturated at n = 200):

- ``none``: no shift (H0): the false-positive rate, beside the central 99 % binomial band at α;
- ``rotate 10°``: every target image rotated by 10° (bilinear);
- ``class prior``: target digits 0–4 drawn with weight 1.5, 5–9 with 0.5 (3 : 1);
- ``blur σ=0.7``: a 5 × 5 Gaussian blur of σ = 0.7 px (a slightly soft camera);
- ``contrast 0.9``: target intensities × 0.9 (a slightly dim camera);
- ``dead column``: 8 pixels of one column (rows 10–17 of column 14) read 0 (a dead sensor line).

Beside the two tests, a research column: the same min-p aggregation over the Gaussians plus four Laplace
kernels exp(−‖x − y‖₁ / l), l = l₁ × {1/2, 1, 2, 4} with l₁ the median L1 distance (MMDAgg's
``laplace_gaussian`` collection). It is not in the library: the L1 distances are not a matrix product, and
the table shows what they cost.

A test rejects when p ≤ α. Seconds are wall time per test call (features in, p-value out), one torch thread,
the tests interleaved so all see the same machine load.

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
from torchtransfer.shift.aggregated import min_p_value

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/shift_power.json"
SHIFTS = ("none", "rotate 10°", "class prior", "blur σ=0.7", "contrast 0.9", "dead column")
SPACES = ("features", "pixels")
LAPLACE_SCALES = (0.5, 1.0, 2.0, 4.0)
TESTS = ("median", "aggregated", "laplace")


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


def dead_column(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) images with rows 10–17 of column 14 set to 0."""
    x = x.clone()
    x[:, :, 10:18, 14] = 0.0
    return x


def target_views(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The target pool's images under each shift (class prior changes the draw, not the images)."""
    return {"none": x, "rotate 10°": rotate(x, 10.0), "class prior": x, "blur σ=0.7": blur(x, 0.7),
            "contrast 0.9": 0.9 * x, "dead column": dead_column(x)}


def laplace_statistics(z: torch.Tensor, m: int, n_permutations: int, seed: int) -> torch.Tensor:
    """Unbiased MMD² (K, 1 + B) of the Laplace kernels l₁ × LAPLACE_SCALES on the splits that
    ``shift.permuted_statistics`` draws for ``seed`` (the observed split first)."""
    gen = torch.Generator().manual_seed(seed)
    masks = [shift.permutation_masks(len(z), m, min(128, n_permutations - i), gen)
             for i in range(0, n_permutations, 128)]
    w = torch.cat([(torch.arange(len(z)) < m).double()[:, None], *masks], dim=1)  # (N, 1 + B)
    d1 = torch.cdist(z, z, p=1)  # (N, N)
    l1 = float(d1[torch.triu_indices(len(z), len(z), offset=1).unbind()].median())
    out = []
    for scale in LAPLACE_SCALES:
        k = torch.exp(-d1 / (l1 * scale)).fill_diagonal_(0.0)
        s_xx = (w * (k @ w)).sum(0)
        s_xy = k.sum(1) @ w - s_xx
        s_yy = k.sum() - s_xx - 2 * s_xy
        n = len(z) - m
        out.append(s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2 * s_xy / (m * n))
    return torch.stack(out)


def laplace_gaussian_p(xs: torch.Tensor, xt: torch.Tensor, n_permutations: int, seed: int) -> float:
    """The min-p corrected p-value over the library's Gaussians and the Laplace kernels, same splits."""
    z = torch.cat([xs, xt])
    l_med = shift.median_bandwidth(z, seed)
    gauss = shift.permuted_statistics(z, len(xs), tuple((l_med * s,) for s in shift.AGGREGATED_SCALES),
                                      n_permutations, seed)
    return min_p_value(torch.cat([gauss, laplace_statistics(z, len(xs), n_permutations, seed)]))


def draw(gen: torch.Generator, n: int, labels: torch.Tensor, prior: bool) -> torch.Tensor:
    """n indices into a pool; with ``prior``, digits 0–4 weighted 1.5 and 5–9 0.5 (without replacement)."""
    if not prior:
        return torch.randperm(len(labels), generator=gen)[:n]
    weights = torch.where(labels < 5, 1.5, 0.5).double()
    return torch.multinomial(weights, n, replacement=False, generator=gen)


def seed_of(*keys: int) -> int:
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def test_p(test: str, xs: torch.Tensor, xt: torch.Tensor, args, seed: int) -> tuple[float, tuple[float, ...]]:
    """(p, each Gaussian bandwidth's own p for the aggregated test) of one test on one draw."""
    if test == "laplace":
        return laplace_gaussian_p(xs, xt, args.permutations, seed), ()
    res = shift.two_sample_test(xs, xt, test=test, n_permutations=args.permutations, seed=seed)
    return res.p_value, tuple(getattr(res, "p_values", ()))


def cell(space: str, name: str, n: int, reps: int, pools: dict, args) -> dict:
    """Every test on ``reps`` draws of (n source, n shifted target): rejections, seconds, oracle power."""
    hits = dict.fromkeys(TESTS, 0)
    seconds = dict.fromkeys(TESTS, 0.0)
    oracle = np.zeros(len(shift.AGGREGATED_SCALES))
    k = SHIFTS.index(name)
    for r in range(reps):
        s = seed_of(args.seed, k, n, r)  # the same draws in both representations
        gen = torch.Generator().manual_seed(s)
        xs = pools["source"][draw(gen, n, pools["source_y"], False)]
        xt = pools[name][draw(gen, n, pools["target_y"], name == "class prior")]
        for test in TESTS:
            start = time.perf_counter()
            p, own = test_p(test, xs, xt, args, s)
            seconds[test] += time.perf_counter() - start
            hits[test] += p <= args.alpha
            if own:
                oracle += np.asarray(own) <= args.alpha  # uncorrected, per bandwidth
    row = {"space": space, "shift": name, "n": n, "reps": reps, **{f"{t}_power": hits[t] / reps for t in hits},
           **{f"{t}_seconds": seconds[t] / reps for t in seconds}, "oracle_power": float(oracle.max() / reps),
           "oracle_scale": float(shift.AGGREGATED_SCALES[int(oracle.argmax())])}
    if name == "none":
        row["band"] = [v / reps for v in stats.binom.interval(0.99, reps, args.alpha)]
    return row


def representations(args) -> dict[str, dict]:
    """Per space: the source pool, every shifted target pool (N, d) float64, and the pools' labels."""
    data = mnist()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))
    train, src, tgt = order[:1000], order[1000:3000], order[3000:5000]
    start = time.perf_counter()
    model = train_source(data.x[train], data.y[train], args.epochs, args.seed)
    views = target_views(data.x[tgt])
    labels = {"source_y": data.y[src], "target_y": data.y[tgt]}
    with torch.no_grad():
        spaces = {"features": {"source": features(model, data.x[src]).double(),
                               **{k: features(model, x).double() for k, x in views.items()}, **labels},
                  "pixels": {"source": data.x[src].flatten(1).double(),
                             **{k: x.flatten(1).double() for k, x in views.items()}, **labels}}
    print(f"source LeNet ({args.epochs} epochs on 1,000 images) and features: {time.perf_counter() - start:.0f} s",
          flush=True)
    return {space: spaces[space] for space in args.spaces}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    spaces = representations(args)
    tags, _ = code_record(ROOT)
    config = {k: v for k, v in vars(args).items() if k not in ("table", "docs", "results")}
    config.update(scales=list(shift.AGGREGATED_SCALES), laplace_scales=list(LAPLACE_SCALES),
                  representations={"features": "source LeNet features (500-d)", "pixels": "raw pixels (784-d)"},
                  shifts=list(SHIFTS))
    rows = []
    for space, pools in spaces.items():
        for n in args.sizes:
            for name in SHIFTS:
                reps = args.null_reps if name == "none" else args.reps
                reps = reps if n < 500 else max(1, reps * args.large_share // 100)
                row = cell(space, name, n, reps, pools, args)
                row.update(commit=tags["git.commit"], dirty=tags["git.dirty"], config=config)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "config"}, ensure_ascii=False), flush=True)
    return {"commit": tags["git.commit"], "dirty": tags["git.dirty"], "config": config, "rows": rows}


def power_ratio(row: dict, key: str) -> str:
    """A test's power over the median test's in one row ("–" under H0 or when neither rejects)."""
    med = row["median_power"]
    return "–" if row["shift"] == "none" else (f"{row[key] / med:.2f}" if med else "∞" if row[key] else "–")


def table(result: dict) -> str:
    """The Markdown table of a result file: power (FPR for none) of every test, ratios to the median's, seconds."""
    cfg = result["config"]
    lines = [f"Real MNIST, α = {cfg['alpha']}, B = {cfg['permutations']} permutations, {cfg['threads']} torch "
             f"thread; aggregated = Gaussians l_med × {{{', '.join(f'{s:.3g}' for s in cfg['scales'])}}}; "
             f"+ Laplace = those and Laplace kernels l₁ × {{{', '.join(f'{s:.3g}' for s in cfg['laplace_scales'])}}} "
             f"(research, not in the library). Commit {result['commit'][:7]}"
             f"{' (dirty)' if result['dirty'] == 'true' else ''}.", "",
             "| representation | shift | n per side | reps | median: rejection rate | aggregated | power ratio "
             "| best single bandwidth (uncorrected) | + Laplace | power ratio | median s/test | aggregated: time ratio "
             "| + Laplace: time ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(result["rows"], key=lambda r: (SPACES.index(r["space"]), SHIFTS.index(r["shift"]), r["n"])):
        med = r["median_power"]
        name = "none (H0: false-positive rate)" if r["shift"] == "none" else r["shift"]
        band = f" (99 % band {r['band'][0]:.3f}–{r['band'][1]:.3f})" if "band" in r else ""
        agg, lap = power_ratio(r, "aggregated_power"), power_ratio(r, "laplace_power")
        lines.append(f"| {r['space']} | {name} | {r['n']} | {r['reps']} | {med:.3f}{band} "
                     f"| {r['aggregated_power']:.3f} | {agg} | {r['oracle_power']:.2f} (× {r['oracle_scale']:.3g}) "
                     f"| {r['laplace_power']:.3f} | {lap} | {r['median_seconds']:.3f} "
                     f"| {r['aggregated_seconds'] / r['median_seconds']:.2f} "
                     f"| {r['laplace_seconds'] / r['median_seconds']:.2f} |")
    return "\n".join(lines)


def summary(result: dict, n: int = 100) -> str:
    """The README's short version: per shift, the median and the aggregated test's power at ``n`` per side in
    each representation, the false-positive rates under H0, and the aggregated test's time ratio."""
    rows = [r for r in result["rows"] if r["n"] == n]
    spaces = [s for s in SPACES if any(r["space"] == s for r in rows)]
    cell = {(r["space"], r["shift"]): r for r in rows}
    lines = [f"| shift (n = {n} per side) | " + " | ".join(f"{s}: median → aggregated (ratio)" for s in spaces) + " |",
             "| --- |" + " ---: |" * len(spaces)]
    for name in SHIFTS:
        got = [cell.get((s, name)) for s in spaces]
        if name == "none":
            text = [f"{r['median_power']:.3f} → {r['aggregated_power']:.3f}" if r else "–" for r in got]
            lines.append("| none (H0: false-positive rate, α = 0.05) | " + " | ".join(text) + " |")
            continue
        text = [f"{r['median_power']:.2f} → {r['aggregated_power']:.2f} ({power_ratio(r, 'aggregated_power')})"
                if r else "–" for r in got]
        lines.append(f"| {name} | " + " | ".join(text) + " |")
    ratios = [r["aggregated_seconds"] / r["median_seconds"] for r in result["rows"]]
    lines += ["", f"Aggregated test: {min(ratios):.2f}–{max(ratios):.2f}× the median test's seconds. Commit "
              f"{result['commit'][:7]}; every size, the Laplace column and the best single bandwidth: "
              "`benchmarks/shift_power.py --table`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="images per side")
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES, help="representations")
    parser.add_argument("--reps", type=int, default=100, help="repetitions per shifted cell")
    parser.add_argument("--null-reps", type=int, default=500, help="repetitions under H0 (no shift)")
    parser.add_argument("--large-share", type=int, default=40, help="percent of the repetitions at n ≥ 500")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=8, help="source LeNet training epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    doctables.add_result_options(parser, RESULTS)
    args = parser.parse_args(argv)
    doctables.record_and_render(args, run, table, "shift_power")
    if args.docs:
        doctables.write("shift_power_summary", summary(json.loads(args.results.read_text())))


if __name__ == "__main__":
    main()
