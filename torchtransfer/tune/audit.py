r"""The validators' audit: how well each label-free score would have picked trials, judged by the oracle
(labelled target validation accuracy) where it exists — never used for selection by a label-free objective.

For trials :math:`t` with validator score :math:`v_t` and oracle accuracy :math:`a_t`:

- Spearman's :math:`\rho` between :math:`v` and :math:`a` over the completed trials;
- the regret :math:`\max_t a_t - a_{\arg\max_t v_t}`: the oracle accuracy lost by trusting the validator.

Musgrave et al. (2022) report, over 1,000,000 checkpoints, that "in many cases, the state of the art is
obtained by a simple baseline"; this audit shows which holds on your data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ORACLE = "val/acc"
PREFIX = "validation/"


def audit(trials: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{validator: {"spearman": ρ, "regret": r}}`` over trials' best-epoch metrics that hold the oracle.

    Example:
        >>> trials = [{"validation/im": 0.1, "val/acc": 0.5}, {"validation/im": 0.3, "val/acc": 0.9},
        ...           {"validation/im": 0.2, "val/acc": 0.7}]
        >>> audit(trials)["im"]
        {'spearman': 1.0, 'regret': 0.0}
    """
    from scipy.stats import spearmanr

    scored = [t for t in trials if t.get(ORACLE) is not None]
    names = sorted({k[len(PREFIX):] for t in scored for k in t if k.startswith(PREFIX)})
    out: dict[str, dict[str, float]] = {}
    for name in names:
        rows = [(t[PREFIX + name], t[ORACLE]) for t in scored if t.get(PREFIX + name) is not None]
        if len(rows) < 2:
            continue
        v, a = np.array(rows).T
        rho = spearmanr(v, a).statistic if np.ptp(v) > 0 and np.ptp(a) > 0 else float("nan")
        out[name] = {"spearman": float(rho), "regret": float(a.max() - a[int(np.argmax(v))])}
    return out


def audit_figure(trials: Sequence[Mapping[str, float]], title: str = "validators vs the oracle"):
    """One scatter per validator: its score against oracle accuracy, one point per completed trial."""
    from matplotlib.figure import Figure

    scored = [t for t in trials if t.get(ORACLE) is not None]
    names = sorted({k[len(PREFIX):] for t in scored for k in t if k.startswith(PREFIX)})
    fig = Figure(figsize=(3.2 * max(len(names), 1), 3.0), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        rows = [(t[PREFIX + name], t[ORACLE]) for t in scored if t.get(PREFIX + name) is not None]
        if rows:
            ax.scatter(*np.array(rows).T, s=12)
        ax.set_xlabel(name)
        ax.set_ylabel("target val acc" if i == 0 else "")
    fig.suptitle(title)
    return fig
