"""What the promotion gate compares when the target has no labelled test images: a label-free score.

``registry.gate`` names the basis of automatic promotion:

- ``target_test_acc`` (default): accuracy on the labelled target test split (needs ``data.target.test ≥ 1``);
- a validator (``im``, ``snd``, ``bnm``, ``dev``, ``class_ami``; ``torchtransfer.tune.validators``): the
  challenger and the champion are scored by that validator on the *same* unlabelled target images (and the
  same source images where the validator reads them), so the two numbers are comparable; every decision says
  that the score is label-free, unverified by target labels;
- ``manual``: the challenger is registered (alias ``challenger``) and the champion never moves automatically;
  a person promotes with ``torchtransfer promote``.

The target images' labels are never read here (``Selector`` reads only ``target.x``).
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from torch import nn

from torchtransfer.data.splits import DomainPair
from torchtransfer.evaluation import split_fingerprint
from torchtransfer.keys import GATE_ACCURACY, GATE_MANUAL
from torchtransfer.names import TARGET_VALIDATORS
from torchtransfer.registry.promotion import Decision, Scored
from torchtransfer.registry.store import from_registry, log
from torchtransfer.train.learner import transfer_learner
from torchtransfer.train.selection import Selector

__all__ = ["GATE_ACCURACY", "GATE_MANUAL", "TARGET_VALIDATORS", "label_free_score", "manual_decision",
           "scored_fingerprint", "score_champion"]


def label_free_score(model: nn.Module, pair: DomainPair, gate: str, seed: int, device: str = "cpu") -> float:
    """``gate``'s validator score of ``model`` on the pair's unlabelled target training images (seeded
    subsample of at most 500, as in tuning); higher = better."""
    if gate not in TARGET_VALIDATORS:
        raise ValueError(f"gate {gate!r} is not a label-free validator; expected one of {TARGET_VALIDATORS}")
    selector = Selector.from_domains(gate, pair.target_train, pair.source_val, pair.source_train, None, seed)
    score, _ = selector(transfer_learner(model, device=device))
    return score


def scored_fingerprint(pair: DomainPair) -> str:
    """The data a label-free score reads: target training images (their labels are not part of it: never
    read) and the source validation images and labels."""
    target = split_fingerprint(pair.target_train.x, pair.target_train.y.new_zeros(len(pair.target_train)))
    return split_fingerprint(pair.source_val.x, pair.source_val.y)[:32] + target[:32]


def metric_name(gate: str) -> str:
    return f"label-free {gate} score (unverified by target labels)"


def score_champion(client: MlflowClient, name: str, version: ModelVersion, pair: DomainPair, gate: str,
                   seed: int) -> Scored:
    """The champion's ``gate`` score on the challenger's data (cached as a version tag per data fingerprint)."""
    fingerprint, v = scored_fingerprint(pair), str(version.version)
    cache_key = f"gate.{gate}.on.{fingerprint[:16]}"
    if cache_key in version.tags:
        return Scored(v, float(version.tags[cache_key]), fingerprint, "scored earlier on this data", metric_name(gate))
    try:
        score = label_free_score(from_registry(f"models:/{name}/{v}"), pair, gate, seed)
    except Exception as exc:  # an old or broken version: the gate says it cannot compare
        log.warning("could not score %s v%s with %s: %s", name, v, gate, exc)
        return Scored(v, None, None, f"scoring failed: {type(exc).__name__}: {exc}", metric_name(gate))
    client.set_model_version_tag(name, v, cache_key, f"{score:.6f}")
    return Scored(v, score, fingerprint, "scored on the challenger's data", metric_name(gate))


def manual_decision(name: str, version: str) -> Decision:
    return Decision(False, f"registry.gate=manual: v{version} is the challenger; the champion moves only by "
                           f"`torchtransfer promote {name} {version}`", comparable=False)
