"""Fine-tuning strategies: which trunk blocks train at each epoch, their BatchNorm mode, and lr groups.

A model here exposes ``model.blocks()`` (its trunk as an ordered list of modules, input → output) and
``model.head`` (the classifier). With ``n`` blocks, the number ``k`` of *last* blocks that train is:

| strategy | k at epoch e (1-based) |
| --- | --- |
| ``feature_extraction`` | 0 (only the head trains; its input features can be cached) |
| ``fine_tune`` | n |
| ``partial`` | min(unfreeze, n) |
| ``gradual`` | min(e − 1, n): the head alone first, then one more block per epoch (ULMFiT) |

Frozen blocks have ``requires_grad=False`` and their BatchNorm layers stay in eval mode, so neither their
weights nor their running statistics move.
"""

from __future__ import annotations

from torch import nn

from torchtransfer.names import STRATEGIES


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")


def n_trainable_blocks(strategy: str, n_blocks: int, epoch: int, unfreeze: int = 1) -> int:
    """``k``, the number of last trunk blocks that train at ``epoch`` (see the module table).

    Example:
        >>> [n_trainable_blocks("gradual", 3, e) for e in (1, 2, 3, 4, 5)]
        [0, 1, 2, 3, 3]
    """
    check_strategy(strategy)
    if strategy == "feature_extraction":
        return 0
    if strategy == "fine_tune":
        return n_blocks
    if strategy == "partial":
        if unfreeze < 0:
            raise ValueError(f"unfreeze must be ≥ 0, got {unfreeze}")
        return min(unfreeze, n_blocks)
    return min(max(epoch - 1, 0), n_blocks)


def blocks_of(model: nn.Module) -> list[nn.Module]:
    if not hasattr(model, "blocks") or not hasattr(model, "head"):
        raise TypeError(f"{type(model).__name__} needs blocks() and head for the fine-tuning strategies; "
                        "build it with torchtransfer.models")
    return list(model.blocks())


def freeze(model: nn.Module, k: int) -> None:
    """Train the last ``k`` trunk blocks and the head; freeze every other parameter of the model."""
    blocks = blocks_of(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for block in blocks[len(blocks) - k:] if k > 0 else []:
        for p in block.parameters():
            p.requires_grad_(True)
    for p in model.head.parameters():
        p.requires_grad_(True)


def train_mode(model: nn.Module, k: int) -> None:
    """``model.train()``, then eval mode for every frozen block (frozen BatchNorm statistics)."""
    model.train()
    blocks = blocks_of(model)
    for block in blocks[: len(blocks) - k]:
        block.eval()


def param_groups(model: nn.Module, lr: float, lr_mult: float,
                 extra: tuple[nn.Module, ...] = ()) -> list[dict]:
    """Discriminative learning rates: the backbone (everything but the head) at ``lr · lr_mult``; the head and
    ``extra`` modules (e.g. a domain classifier) at ``lr``. Every parameter is listed, frozen or not, so one
    optimizer serves a whole ``gradual`` run (SGD and AdamW skip parameters without gradients).
    """
    head_ids = {id(p) for p in model.head.parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    head = list(model.head.parameters()) + [p for m in extra for p in m.parameters()]
    groups = [{"params": head, "lr": lr, "name": "head"}]
    if backbone:
        groups.insert(0, {"params": backbone, "lr": lr * lr_mult, "name": "backbone"})
    return groups
