"""The shift report: every number of one representation's shift analysis, and its two figures.

``analyze`` runs the permutation test, the proxy A-distance and (where both sides have labels) the per-class
MMD² on one representation (raw pixels, backbone features, or any (N, d) arrays) and returns a JSON-ready
dict plus the ``MMDResult``. The flow's ``analyze_shift`` task and ``torchtransfer shift A B`` both use it,
so the report is the same with or without the flow. Figures use matplotlib's ``Figure`` directly (the Agg
canvas; no pyplot state, no display needed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from torchtransfer.report_html import DOMAIN_COLOURS
from torchtransfer.shift import aggregated
from torchtransfer.shift import mmd as shift
from torchtransfer.shift.a_distance import proxy_a_distance
from torchtransfer.shift.per_class import class_conditional_mmd


def analyze(x: shift.ArrayLike, y: shift.ArrayLike, *, n_permutations: int = 1000,
            bandwidth: shift.Bandwidth = None, seed: int = 0, alpha: float = 0.05, test: str = "median",
            labels_x: shift.ArrayLike | None = None, labels_y: shift.ArrayLike | None = None,
            ) -> tuple[dict[str, Any], shift.MMDResult]:
    """MMD² + permutation p-value, proxy A-distance and per-class MMD² of x (m, ...) vs y (n, ...).

    ``test`` is ``median`` (:func:`~torchtransfer.shift.mmd.permutation_test`) or ``aggregated``
    (:func:`~torchtransfer.shift.aggregated.aggregated_test`). Returns ``(report, result)``; ``report`` holds
    the test, statistic, p-value, bandwidth(s), n, m, B, the seed, ``significant`` (p < alpha), ``a_distance``
    and ``per_class`` (class → MMD², {} without labels); the aggregated test adds each bandwidth's MMD² and p.
    """
    x, y = shift.as_matrix(x, "source"), shift.as_matrix(y, "target")
    result = aggregated.two_sample_test(x, y, test=test, n_permutations=n_permutations, bandwidth=bandwidth,
                                        seed=seed)
    per_class: dict[int, float] = {}
    if labels_x is not None and labels_y is not None:
        per_class = class_conditional_mmd(x, y, labels_x, labels_y, bandwidth=result.bandwidth, seed=seed)
    report = {k: v for k, v in asdict(result).items() if k != "null"}
    report.update(
        alpha=alpha,
        significant=bool(n_permutations > 0 and result.p_value < alpha),
        a_distance=proxy_a_distance(x, y, seed=seed),
        per_class={str(c): v for c, v in per_class.items()},
        null_quantiles=_quantiles(result.null),
    )
    return report, result


def _quantiles(null: tuple[float, ...]) -> dict[str, float]:
    if not null:
        return {}
    q = np.quantile(np.asarray(null), [0.5, 0.95, 0.99])
    return {"q50": float(q[0]), "q95": float(q[1]), "q99": float(q[2])}


def pca_2d(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Project x (m, d) and y (n, d) on the top two principal axes of the pooled, centred sample."""
    z = torch.cat([shift.as_matrix(x), shift.as_matrix(y)])  # (m + n, d)
    z = z - z.mean(0)
    _, _, v = torch.linalg.svd(z, full_matrices=False)  # v: (min(N, d), d)
    p = z @ v[:2].T  # (m + n, 2)
    if p.shape[1] < 2:  # 1-d inputs: pad a zero axis
        p = torch.nn.functional.pad(p, (0, 2 - p.shape[1]))
    return p[: len(x)], p[len(x):]


def embedding_figure(x: Tensor, y: Tensor, *, names: tuple[str, str] = ("source", "target"),
                     title: str = "") -> Figure:
    """2-D PCA scatter of source vs target samples, in the report's domain colours (``DOMAIN_COLOURS``)."""
    px, py = pca_2d(x, y)
    fig = Figure(figsize=(5, 4.5), dpi=110)
    ax = fig.add_subplot()
    ax.scatter(px[:, 0], px[:, 1], s=6, alpha=0.5, color=DOMAIN_COLOURS["source"], label=f"{names[0]} (n={len(px)})")
    ax.scatter(py[:, 0], py[:, 1], s=6, alpha=0.5, color=DOMAIN_COLOURS["target"], label=f"{names[1]} (n={len(py)})")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title or "embedding (PCA of pooled sample)")
    ax.legend(loc="best", markerscale=3)
    fig.tight_layout()
    return fig


def null_figure(result: shift.MMDResult, *, title: str = "") -> Figure:
    """Histogram of the permutation null with the observed MMD² marked on the x axis.

    An observed value far off the null (more than 3 null widths from its median, as for MNIST vs USPS) would
    squash the histogram into one bar; the axis is then broken in two: the null on the left, a narrow panel
    around the observed value on the right, its tick labelled with that value.
    """
    fig = Figure(figsize=(5, 3.5), dpi=110)
    p_name = "aggregated p" if result.test == "aggregated" else "p"  # the null drawn is the median bandwidth's
    label = f"observed {result.mmd2:.4g} ({p_name}={result.p_value:.4g})"
    null = np.asarray(result.null)
    span = np.ptp(null) if len(null) else 0.0
    broken = span > 0 and abs(result.mmd2 - np.median(null)) > 3 * span
    if broken:
        left, right = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [4, 1], "wspace": 0.08})
        panels = (right, left) if result.mmd2 < null.min() else (left, right)
        null_ax, observed_ax = panels
        null_ax.set_xlim(null.min() - 0.1 * span, null.max() + 0.1 * span)
        observed_ax.set_xlim(result.mmd2 - span / 2, result.mmd2 + span / 2)
        observed_ax.set_xticks([result.mmd2], [f"{result.mmd2:.4g}"])
        _break_marks(left, right)
    else:
        null_ax = observed_ax = fig.add_subplot()
    if len(null):
        null_ax.hist(null, bins=40, color="0.6", label=f"permutation null (B={result.n_permutations})")
    observed_ax.axvline(result.mmd2, color="crimson", lw=2, label=label)
    null_ax.set(ylabel="count", title=title or "permutation test")
    fig.supxlabel(f"MMD² ({result.estimator})", fontsize=10)
    handles = [h for ax in {id(a): a for a in (null_ax, observed_ax)}.values()
               for h in ax.get_legend_handles_labels()[0]]
    null_ax.legend(handles=handles, loc="upper center" if broken else "best", fontsize=8)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.18, top=0.9, wspace=0.08)
    return fig


def _break_marks(left, right) -> None:
    """Hide the facing spines of a broken axis and draw the usual diagonal cut marks."""
    left.spines.right.set_visible(False)
    right.spines.left.set_visible(False)
    right.tick_params(left=False)
    kwargs = {"marker": [(-1, -1), (1, 1)], "markersize": 8, "linestyle": "none", "color": "k", "clip_on": False}
    left.plot([1, 1], [0, 1], transform=left.transAxes, **kwargs)
    right.plot([0, 0], [0, 1], transform=right.transAxes, **kwargs)
