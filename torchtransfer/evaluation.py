"""Classification metrics on a test split: accuracy, macro-F1, per-class precision/recall, calibration (ECE),
the confusion matrix (counts and a figure), and a fingerprint of the split they were measured on."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import Tensor


def classification_metrics(y_true: Tensor, y_pred: Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 over all ``num_classes`` classes.

    Example:
        >>> import torch
        >>> classification_metrics(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)["acc"]
        0.75
    """
    t, p = y_true.numpy(), y_pred.numpy()
    labels = np.arange(num_classes)
    return {
        "acc": float((t == p).mean()),
        "macro_f1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
    }


def confusion(y_true: Tensor, y_pred: Tensor, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    return confusion_matrix(y_true.numpy(), y_pred.numpy(), labels=np.arange(num_classes))


def per_class(y_true: Tensor, y_pred: Tensor, num_classes: int) -> list[dict[str, float | int]]:
    """One row per class: ``class``, ``precision``, ``recall``, ``f1``, ``support`` (true count), ``predicted``.

    A class that is never predicted has precision 0 (and one with no true images recall 0), not NaN.

    Example:
        >>> rows = per_class(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
        >>> [(r["class"], r["precision"], r["recall"], r["support"]) for r in rows]
        [(0, 1.0, 0.5, 2), (1, 0.6666666666666666, 1.0, 2)]
    """
    t, p = y_true.numpy(), y_pred.numpy()
    labels = np.arange(num_classes)
    precision, recall, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    predicted = np.bincount(p, minlength=num_classes)
    return [{"class": int(c), "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
             "support": int(support[c]), "predicted": int(predicted[c])} for c in labels]


def expected_calibration_error(probs: Tensor, y_true: Tensor, n_bins: int = 15) -> float:
    r"""Expected calibration error with ``n_bins`` equal-width confidence bins.

    .. math:: \mathrm{ECE} = \sum_{b} \frac{|B_b|}{N}\,\bigl|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\bigr|

    where the confidence of an image is its top class probability and :math:`B_b` the images whose
    confidence falls in bin ``b`` = (b/n_bins, (b+1)/n_bins].

    Args:
        probs: Class probabilities, shape (N, K), rows summing to 1.
        y_true: True labels, shape (N,).
        n_bins: Number of confidence bins.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
        >>> round(expected_calibration_error(p, torch.tensor([0, 1, 0, 0])), 4)  # |0.5-0.9|/2 + |1-0.6|/2
        0.4
    """
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"expected probs (N, K) and y_true (N,), got {tuple(probs.shape)} and "
                         f"{tuple(y_true.shape)}")
    if len(y_true) == 0:
        raise ValueError("expected_calibration_error needs at least one image")
    confidence, pred = probs.max(dim=1)  # (N,), (N,)
    correct = (pred == y_true).float()
    bins = torch.clamp(torch.ceil(confidence * n_bins).long() - 1, 0, n_bins - 1)  # (N,) in 0..n_bins-1
    conf_sum = torch.zeros(n_bins).index_add_(0, bins, confidence.float())
    acc_sum = torch.zeros(n_bins).index_add_(0, bins, correct)
    return float((acc_sum - conf_sum).abs().sum() / len(y_true))  # Σ_b |B_b|/N · |acc_b − conf_b|


def split_fingerprint(x: Tensor, y: Tensor) -> str:
    """sha256 over a split's images and labels: two evaluations are comparable only when these match.

    Example:
        >>> a = split_fingerprint(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
        >>> a == split_fingerprint(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])), len(a)
        (True, 64)
        >>> a == split_fingerprint(torch.zeros(2, 1, 4, 4), torch.tensor([1, 1]))
        False
    """
    digest = hashlib.sha256()
    digest.update(str(tuple(x.shape)).encode())
    digest.update(x.detach().cpu().contiguous().float().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().long().numpy().tobytes())
    return digest.hexdigest()


def confusion_figure(matrix: np.ndarray, title: str = "confusion matrix", cmap: str = "Blues"):
    """A matplotlib figure of a (K, K) count matrix: row-normalised colours (``cmap``: the colour map of the
    domain it was measured on, see ``report_html.DOMAIN_CMAPS``), the counts written in each cell.

    It is drawn on an Agg canvas without pyplot, so no display or global backend is involved; save it
    with ``fig.savefig(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = matrix.shape[0]
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)  # row-normalised: recall on the diagonal
    fig = Figure(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap=cmap, vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    return fig
