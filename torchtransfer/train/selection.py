"""Model selection without target labels: a ``Selector`` scores a learner after every epoch with every
label-free validator (``torchtransfer.tune.validators``) and returns the configured objective's value, so
early stopping, the best epoch and the Optuna objective (and its pruner) all follow it.

Target images enter unlabelled (their ``y`` is never read). Labelled target validation images, when the
config has them, are scored only as the oracle (``val/acc`` in the metrics) and never steer a label-free
objective; with ``objective = "target_val_acc"`` the oracle *is* the objective (the labelled protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from torchtransfer.data.datasets import Domain
from torchtransfer.evaluation import classification_metrics
from torchtransfer.names import LABELLED_OBJECTIVE, OBJECTIVES
from torchtransfer.tune import validators


def improves(score: float, best: float | None, later_ties: bool = False) -> bool:
    """Whether an epoch scoring ``score`` replaces the best so far (``best``; None: none yet): a higher score, or
    an equal one with ``later_ties``. With a moving average of the weights the later of two tied epochs is the
    better model (the average has seen more steps), and the 200 validation images tie often (steps of 0.5 %).

        >>> improves(0.5, None), improves(0.5, 0.5), improves(0.5, 0.5, later_ties=True), improves(0.4, 0.5, True)
        (True, False, True, False)
    """
    return best is None or score > best or later_ties and score == best


def _sample(x: Tensor, n: int, seed: int) -> Tensor:
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


@dataclass(frozen=True)
class Selector:
    """Scores of one learner on fixed, seeded subsamples; call it as ``selector(learner) → (score, metrics)``.

    Attributes:
        objective: ``target_val_acc`` or a validator name (``VALIDATORS``).
        target_x: (n, C, H, W) unlabelled target images.
        source_val: labelled source validation images (DEV, ``source_val_acc``).
        source_train_x: (m, C, H, W) source training images (DEV's domain classifier).
        oracle: labelled target validation images, or None; scored as ``val/acc`` only.
        seed: seeds k-means and the domain classifier.
    """

    objective: str
    target_x: Tensor
    source_val: Domain
    source_train_x: Tensor
    oracle: Domain | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} is not one of {OBJECTIVES}")
        if self.objective == LABELLED_OBJECTIVE and self.oracle is None:
            raise ValueError("objective target_val_acc needs labelled target validation images")

    @classmethod
    def from_domains(cls, objective: str, target: Domain, source_val: Domain, source_train: Domain,
                     oracle: Domain | None, seed: int, samples: int = 500) -> Selector:
        """Seeded subsamples of at most ``samples`` images per part; only ``target.x`` is read of ``target``."""
        known = source_val.y >= 0
        val = Domain(source_val.name, source_val.x[known][:samples], source_val.y[known][:samples])
        oracle = oracle if oracle is not None and len(oracle) and bool((oracle.y >= 0).any()) else None
        return cls(objective, _sample(target.x, samples, seed), val, _sample(source_train.x, samples, seed + 1),
                   oracle, seed)

    def __call__(self, learner) -> tuple[float, dict[str, float]]:
        """(objective value, ``{"validation/<name>": score, ..., "val/acc": oracle}``) of ``learner`` now."""
        outputs = validators.Outputs(
            target_probs=learner.predict_proba(self.target_x),  # (n, K)
            target_features=self._features(learner, self.target_x),  # (n, d)
            source_probs=learner.predict_proba(self.source_val.x),
            source_features=self._features(learner, self.source_val.x),
            source_labels=self.source_val.y,
            source_train_features=self._features(learner, self.source_train_x))
        scores = validators.score_all(outputs, self.seed)
        metrics = {f"validation/{name}": value for name, value in scores.items()}
        if self.oracle is not None:
            pred = learner.predict_proba(self.oracle.x).argmax(1)
            metrics["val/acc"] = classification_metrics(self.oracle.y, pred, outputs.target_probs.shape[1])["acc"]
        score = metrics["val/acc"] if self.objective == LABELLED_OBJECTIVE else scores[self.objective]
        return score, metrics

    @staticmethod
    def _features(learner, x: Tensor) -> Tensor:
        return learner.features((x[i: i + 256], None) for i in range(0, len(x), 256))
