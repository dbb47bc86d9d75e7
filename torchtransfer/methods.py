"""The adaptation methods' names and how they compose, defined once: ``train`` implements them, ``config``
validates them and ``tune`` searches over them (which cannot import ``train``).

A method is ``none``, one name of ``METHODS``, or names joined by ``+`` (in config also a list): at most one
alignment loss (``ALIGNMENTS``) plus any self-training losses (``SELF_TRAINING``).
"""

from __future__ import annotations

from collections.abc import Sequence

ALIGNMENTS = ("dan", "dann", "cdan", "coral", "reweight")
SELF_TRAINING = ("fixmatch", "shot")
METHODS = ("none", *ALIGNMENTS, *SELF_TRAINING)


def parse_method(method: str | Sequence[str]) -> str:
    """The canonical method string: ``"dan"``, ``"cdan+fixmatch"`` (alignment first), from a string with
    ``+`` or a list of names; a clear error for unknown names, repeats, ``none`` in a composition or two
    alignment losses.

    Example:
        >>> parse_method(["fixmatch", "dann"]), parse_method("shot")
        ('dann+fixmatch', 'shot')
    """
    parts = [p.strip() for p in (method.split("+") if isinstance(method, str) else list(method))]
    unknown = [p for p in parts if p not in METHODS]
    if unknown or not parts:
        raise ValueError(f"adaptation.method {method!r} is not one of {METHODS} (or several joined by '+')")
    if len(set(parts)) != len(parts):
        raise ValueError(f"adaptation.method {method!r} names a method twice")
    if "none" in parts and len(parts) > 1:
        raise ValueError(f"adaptation.method {method!r}: 'none' cannot be composed with other methods")
    if sum(p in ALIGNMENTS for p in parts) > 1:
        raise ValueError(f"adaptation.method {method!r}: at most one alignment loss of {ALIGNMENTS}; "
                         f"compose it with self-training ({' | '.join(SELF_TRAINING)}) instead")
    return "+".join(sorted(parts, key=METHODS.index))


def has_alignment(method: str) -> bool:
    """Whether the (canonical) ``method`` includes an alignment loss, i.e. reads source images."""
    return any(part in ALIGNMENTS for part in method.split("+"))
