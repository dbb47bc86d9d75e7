"""torchtransfer: transfer learning for PyTorch as a tracked, reproducible workflow.

The library is pure PyTorch (no orchestration): ``from torchtransfer import datasets, models, transfer_learner``.
"""

from torchtransfer import models
from torchtransfer.data import datasets
from torchtransfer.train.learner import TransferLearner, transfer_learner
from torchtransfer.version import __version__

__all__ = ["TransferLearner", "__version__", "datasets", "models", "transfer_learner"]
