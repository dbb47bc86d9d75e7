"""The validator benchmark's analysis: which checkpoint each selection rule picks, and its docs table.

A *rule* is a metric the flow could maximise (``tuning.objective``): ``target_val_acc`` (the oracle: 200
labelled target validation images) or a label-free validator. Acting as the flow does, a rule picks in each
trial the epoch it rates highest (the restored best epoch) and across trials the trial whose picked epoch it
rates highest; the pick's target *test* accuracy is what a user would ship. Spearman's ρ is over every
checkpoint (epoch of a trial) of one direction and seed, between the rule and target test accuracy.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from scipy.stats import spearmanr

ORACLE = "target_val_acc"
RULES = {ORACLE: "val/acc", "im": "validation/im", "snd": "validation/snd", "bnm": "validation/bnm",
         "dev": "validation/dev", "class_ami": "validation/class_ami", "source_val_acc": "validation/source_val_acc"}
NAMES = {"mnist_usps": "MNIST→USPS", "usps_mnist": "USPS→MNIST"}


def pick(trials: list[list[dict]], key: str) -> dict:
    """The checkpoint ``key`` selects: per trial its best epoch (first on ties), then the best of those."""
    best_epochs = [max(epochs, key=lambda e: e[key]) for epochs in trials]
    return max(best_epochs, key=lambda e: e[key])


def audit(trials: list[list[dict]]) -> dict[str, dict[str, float]]:
    """Per rule: the test accuracy of its pick and Spearman's ρ with test accuracy over all checkpoints."""
    checkpoints = [e for epochs in trials for e in epochs]
    truth = [e["test/acc"] for e in checkpoints]
    out = {}
    for rule, key in RULES.items():
        rho = spearmanr([e[key] for e in checkpoints], truth).statistic
        out[rule] = {"test_acc": pick(trials, key)["test/acc"], "spearman": float(rho)}
    out["best checkpoint (hindsight)"] = {"test_acc": max(truth), "spearman": float("nan")}
    return out


def newest(rows: list[dict]) -> list[dict]:
    """Rows of the library hash written last: older code's rows are never mixed in."""
    return [r for r in rows if r["library"] == rows[-1]["library"]] if rows else []


def summary(rows: list[dict]) -> dict[str, dict[str, list[dict[str, float]]]]:
    """direction → rule → one audit entry per seed."""
    groups: dict[tuple[str, int], list[list[dict]]] = defaultdict(list)
    for r in rows:
        groups[(r["direction"], r["seed"])].append(r["epochs"])
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (direction, _seed), trials in sorted(groups.items()):
        for rule, entry in audit(trials).items():
            out[direction][rule].append(entry)
    return out


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    values = [scale * v for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def render(rows: list[dict]) -> str:
    """The Markdown table: per direction, each rule's Spearman ρ and its pick's test accuracy (mean ± std over
    seeds) with the gap to the oracle's pick; then the provenance of the rows."""
    rows = newest(rows)
    if not rows:
        return "no results yet: run benchmarks/validators.py"
    data = summary(rows)
    directions = [d for d in NAMES if d in data]
    head = "| selection rule | " + " | ".join(
        f"{NAMES[d]}: ρ with test acc | {NAMES[d]}: test acc of pick (%) | Δ vs oracle: mean (per seed)"
        for d in directions) + " |"
    lines = [head, "|" + " --- |" * (1 + 3 * len(directions))]
    for rule in data[directions[0]]:
        cells = []
        for d in directions:
            entries, oracle = data[d][rule], data[d][ORACLE]
            rho = "—" if rule.startswith("best") else _mean_std([e["spearman"] for e in entries], digits=2)
            gaps = [100 * (e["test_acc"] - o["test_acc"]) for e, o in zip(entries, oracle, strict=True)]
            per_seed = " / ".join(f"{g:+.1f}" for g in gaps)
            pick_acc = _mean_std([e["test_acc"] for e in entries], 100)
            cells += [rho, pick_acc, f"{statistics.mean(gaps):+.1f} ({per_seed})"]
        label = f"**{rule}** (oracle: labelled target val)" if rule == ORACLE else rule
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    per = {d: len([r for r in rows if r["direction"] == d]) // max(1, len(seeds)) for d in directions}
    seconds = sum(r["seconds"] for r in rows)
    commits = sorted({(r["commit"] or "?")[:7] for r in rows})
    lines.append(f"\n{len(rows)} trials ({', '.join(f'{NAMES[d]} {per[d]}' for d in directions)} per seed; "
                 f"seeds {seeds}), {seconds / 60:.0f} min of training; commit {', '.join(commits)}, "
                 f"library {rows[-1]['library']}; `benchmarks/validators.py --table`.")
    return "\n".join(lines)
