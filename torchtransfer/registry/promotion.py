"""The promotion gate: should the challenger become champion? A pure function of scores; no I/O.

Rules, in order (the first that applies decides):

1. a floor: with ``min_accuracy`` set, a challenger below it is never promoted;
2. no champion yet: promote;
3. the champion *is* the challenger (the same version): nothing to do;
4. the two scores must come from the same test data (equal ``fingerprint``); otherwise the gate cannot compare
   and keeps the champion, saying why (the caller re-evaluates the champion on the challenger's test split
   first whenever it can, so this only happens when that was impossible);
5. promote when ``challenger − champion > min_improvement`` (strictly: a tie keeps the incumbent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Scored:
    """A registered version's target test accuracy and the fingerprint of the test split it was measured on.

    ``note`` says where the score came from when that is not obvious (e.g. re-evaluated, or why it could not be).
    ``metric`` names the score in the reasons: ``target acc`` (labelled test split) or a label-free validator.
    """

    version: str
    target_acc: float | None
    fingerprint: str | None
    note: str = ""
    metric: str = "target acc"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_acc: float | None = None
    champion_acc: float | None = None
    margin: float | None = None
    comparable: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passes(challenger: Scored, champion: Scored | None, min_improvement: float = 0.0,
           min_accuracy: float | None = None) -> Decision:
    """Apply the rules above.

    Example:
        >>> new = Scored("2", 0.91, "fp")
        >>> passes(new, Scored("1", 0.90, "fp")).promote, passes(new, Scored("1", 0.91, "fp")).promote
        (True, False)
        >>> passes(new, None).reason
        'no champion yet; v2 (target acc 0.9100) becomes champion'
        >>> passes(new, Scored("1", 0.5, "other")).comparable
        False
        >>> passes(new, None, min_accuracy=0.95).promote
        False
    """
    acc, metric = challenger.target_acc, challenger.metric
    if acc is None:
        return Decision(False, f"v{challenger.version} has no {metric}; nothing to compare", comparable=False)
    if min_accuracy is not None and acc < min_accuracy:
        return Decision(False, f"v{challenger.version} {metric} {acc:.4f} is below the floor "
                               f"registry.min_accuracy = {min_accuracy}", challenger_acc=acc,
                        champion_acc=champion.target_acc if champion else None)
    if champion is None:
        return Decision(True, f"no champion yet; v{challenger.version} ({metric} {acc:.4f}) becomes champion",
                        challenger_acc=acc)
    if champion.version == challenger.version:
        return Decision(False, f"v{challenger.version} is already the champion", challenger_acc=acc,
                        champion_acc=acc, margin=0.0)
    return _compare(challenger, champion, min_improvement)


def _compare(challenger: Scored, champion: Scored, min_improvement: float) -> Decision:
    acc, best = challenger.target_acc, champion.target_acc
    note = f" ({champion.note})" if champion.note else ""
    if best is None or champion.fingerprint != challenger.fingerprint:
        where = f"no {challenger.metric}" if best is None else (
            f"test data {str(champion.fingerprint)[:12]} ≠ the challenger's {str(challenger.fingerprint)[:12]}")
        return Decision(False, f"cannot compare v{challenger.version} with champion v{champion.version}: "
                               f"{where}{note}; the champion stays", challenger_acc=acc, champion_acc=best,
                        comparable=False)
    margin = acc - best
    numbers = (f"v{challenger.version} {challenger.metric} {acc:.4f} vs champion v{champion.version} {best:.4f}{note}: "
               f"{margin:+.4f}")
    if margin > min_improvement:
        return Decision(True, f"{numbers} > min_improvement {min_improvement}: promoted", acc, best, margin)
    return Decision(False, f"{numbers} is not > min_improvement {min_improvement}: the champion stays",
                    acc, best, margin)
