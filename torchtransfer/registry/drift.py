r"""The nightly decision, pure: has the target drifted from what the champion was adapted to?

A registered version keeps a :class:`Reference` of its target: the data fingerprint, a seeded sample of at most
``shift.max_samples`` target training images as that model sees them (trunk features (n, d) and class
probabilities (n, K)), and its label-free score and mean confidence on that sample. A later check compares the
current target with it:

1. no champion, or a champion without a reference → ``retrain``;
2. the same data fingerprint → ``skip`` (nothing changed; no test is run);
3. otherwise a two-sample test (``shift.test``: median or aggregated MMD, :mod:`torchtransfer.shift`) of the new
   target's features under the champion against the reference features, and the champion's label-free score
   ``s`` (``drift.validator``) on the new sample against its score ``s_0`` at registration: ``retrain`` when
   :math:`p < \alpha` or :math:`s_0 - s > \delta` (``drift.max_score_drop``), else ``skip``.

``drift.force`` turns any ``skip`` into ``retrain`` and says so. The score is label-free: a drop is a warning
sign, unverified by target labels (mean confidence is logged beside it for the same reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from torchtransfer.shift.aggregated import two_sample_test
from torchtransfer.train.learner import transfer_learner
from torchtransfer.tune import validators

RETRAIN, SKIP = "retrain", "skip"


@dataclass(frozen=True)
class Reference:
    """What a version was adapted to. ``features`` (n, d) and ``probs`` (n, K), float32, of the seeded sample."""

    features: np.ndarray
    probs: np.ndarray
    data_fingerprint: str
    validator: str
    score: float
    mean_confidence: float
    seed: int

    def save(self, path: Path) -> Path:
        meta = {k: getattr(self, k) for k in ("data_fingerprint", "validator", "score", "mean_confidence", "seed")}
        np.savez_compressed(path, features=self.features, probs=self.probs, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: Path) -> Reference:
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["features"], saved["probs"], **json.loads(str(saved["meta"])))


@dataclass(frozen=True)
class Measured:
    """The champion on the new target sample: MMD² and p-value against the reference, score, mean confidence."""

    mmd2: float
    p_value: float
    score: float
    mean_confidence: float


@dataclass(frozen=True)
class Verdict:
    """``decision`` (``retrain`` | ``skip``), the ``cause`` in one word and the ``reason`` in a sentence."""

    decision: str
    cause: str
    reason: str

    @property
    def retrain(self) -> bool:
        return self.decision == RETRAIN


def sample(x: Tensor, n: int, seed: int) -> Tensor:
    """A seeded subsample of at most ``n`` rows of ``x`` (N, ...), the same rows for the same N and seed."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def outputs(model: nn.Module, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Trunk features (N, d) and class probabilities (N, K) of images ``x`` (N, C, H, W), eval mode, on the CPU."""
    learner = transfer_learner(model, device="cpu")
    features = learner.features((x[i: i + 512], None) for i in range(0, len(x), 512))
    return features.numpy().astype(np.float32), learner.predict_proba(x).numpy().astype(np.float32)


def score(validator: str, features: np.ndarray, probs: np.ndarray, seed: int) -> float:
    """A validator that reads target outputs alone (``im snd bnm class_ami``); higher = better."""
    p = torch.from_numpy(probs)
    if validator == "im":
        return validators.information_maximisation(p)
    if validator == "snd":
        return validators.soft_neighbourhood_density(p)
    if validator == "bnm":
        return validators.batch_nuclear_norm(p)
    if validator == "class_ami":
        return validators.class_ami(torch.from_numpy(features), p, seed)
    raise ValueError(f"drift.validator {validator!r}: expected one of im, snd, bnm, class_ami")


def mean_confidence(probs: np.ndarray) -> float:
    """Mean of the largest class probability per row of ``probs`` (N, K)."""
    return float(probs.max(axis=1).mean()) if len(probs) else float("nan")


def reference(model: nn.Module, x: Tensor, data_fingerprint: str, validator: str, max_samples: int,
              seed: int) -> Reference:
    """The reference of ``model`` on target images ``x`` (N, C, H, W): a seeded sample of ≤ ``max_samples``."""
    features, probs = outputs(model, sample(x, max_samples, seed))
    return Reference(features, probs, data_fingerprint, validator, score(validator, features, probs, seed),
                     mean_confidence(probs), seed)


def measure(model: nn.Module, x: Tensor, ref: Reference, *, validator: str, test: str, n_permutations: int,
            max_samples: int, seed: int) -> Measured:
    """The champion ``model`` on new target images ``x`` (N, C, H, W), sampled as its reference was: the shift
    test of the new features against the reference features, and ``validator`` on the new outputs."""
    features, probs = outputs(model, sample(x, max_samples, seed))
    result = two_sample_test(ref.features, features, test=test, n_permutations=n_permutations, seed=seed)
    return Measured(result.mmd2, result.p_value, score(validator, features, probs, seed), mean_confidence(probs))


def first_look(champion: str | None, ref_fingerprint: str | None, fingerprint: str) -> Verdict | None:
    """The decision that needs no test (no champion, no reference, unchanged data), else None.

    Example:
        >>> first_look(None, None, "ab").cause, first_look("3", "ab", "ab").decision, first_look("3", "ab", "cd")
        ('no_champion', 'skip', None)
    """
    if champion is None:
        return Verdict(RETRAIN, "no_champion", "no champion yet: the first model is trained")
    if ref_fingerprint is None:
        return Verdict(RETRAIN, "no_reference", f"champion v{champion} has no readable drift reference (registered "
                                                "before references existed, or its artifact is gone): retrain")
    if ref_fingerprint == fingerprint:
        return Verdict(SKIP, "unchanged", f"data unchanged since champion v{champion} (fingerprint "
                                          f"{fingerprint[:12]}): nothing to retrain")
    return None


def judge(m: Measured, reference_score: float, alpha: float, max_score_drop: float, champion: str) -> Verdict:
    """``retrain`` when the shift is significant (p < alpha) or the score fell by more than ``max_score_drop``.

    Example:
        >>> judge(Measured(0.01, 0.3, 0.50, 0.9), 0.55, 0.05, 0.1, "2").decision
        'skip'
        >>> judge(Measured(0.20, 0.01, 0.30, 0.7), 0.55, 0.05, 0.1, "2").cause
        'shift_and_score'
    """
    shifted, drop = m.p_value < alpha, reference_score - m.score
    fell = drop > max_score_drop
    numbers = (f"p = {m.p_value:.4g} {'<' if shifted else '≥'} α = {alpha:g}, score drop {drop:+.4f} "
               f"{'>' if fell else '≤'} {max_score_drop:g} vs champion v{champion}")
    if shifted or fell:
        cause = "shift_and_score" if shifted and fell else "shift" if shifted else "score_drop"
        what = {"shift": "the target shifted", "score_drop": "the champion's label-free score fell",
                "shift_and_score": "the target shifted and the champion's label-free score fell"}[cause]
        return Verdict(RETRAIN, cause, f"{what} ({numbers})")
    return Verdict(SKIP, "no_drift", f"data changed but no drift ({numbers})")


def forced(verdict: Verdict, force: bool) -> Verdict:
    """``drift.force``: a ``skip`` becomes ``retrain``, the check's own verdict kept in the reason."""
    if not force or verdict.retrain:
        return verdict
    return Verdict(RETRAIN, "forced", f"drift.force = true: retrain anyway (the check said skip: {verdict.reason})")
