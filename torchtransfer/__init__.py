"""torchtransfer: transfer learning for PyTorch as a tracked, reproducible workflow.

The library is pure PyTorch (no orchestration): ``from torchtransfer import datasets, models, transfer_learner``.
Those names load on first use (PEP 562), so ``import torchtransfer.config`` (the CLI's ``--help`` and config
errors) does not import torch.
"""

from importlib import import_module
from typing import Any

from torchtransfer.version import __version__

_LAZY = {  # public name → (module, attribute or None for the module itself)
    "models": ("torchtransfer.models", None),
    "datasets": ("torchtransfer.data.datasets", None),
    "TransferLearner": ("torchtransfer.train.learner", "TransferLearner"),
    "transfer_learner": ("torchtransfer.train.learner", "transfer_learner"),
}

__all__ = ["TransferLearner", "__version__", "datasets", "models", "transfer_learner"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'torchtransfer' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = import_module(module) if attribute is None else getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
