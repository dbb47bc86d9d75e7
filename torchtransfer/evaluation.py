"""Classification metrics on a test split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score
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
