"""The promotion gate: should the challenger become champion? A pure function of the metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def passes(challenger_acc: float, champion_acc: float | None, min_improvement: float = 0.0) -> Decision:
    """Promote when there is no champion, or the challenger's target accuracy beats it by more than
    ``min_improvement`` (strictly: an equal score keeps the incumbent).

    Example:
        >>> passes(0.91, 0.90).promote, passes(0.90, 0.90).promote, passes(0.5, None).promote
        (True, False, True)
    """
    if champion_acc is None:
        return Decision(True, "no champion yet")
    margin = challenger_acc - champion_acc
    if margin > min_improvement:
        return Decision(True, f"target acc {challenger_acc:.4f} beats champion {champion_acc:.4f} "
                              f"by {margin:+.4f} (> {min_improvement})")
    return Decision(False, f"target acc {challenger_acc:.4f} vs champion {champion_acc:.4f}: "
                           f"{margin:+.4f} is not > {min_improvement}")
