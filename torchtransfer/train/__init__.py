"""Training stage: ``transfer_learner(model, ...)`` → ``TransferLearner.fit(train, plan)``.

``plan`` is the one frozen ``TrainPlan`` of a run (strategy, optimiser, schedule, adaptation, augmentation,
epochs, early stopping, device); ``learner`` runs it; ``strategies`` freezes blocks; ``optim`` builds
optimisers and schedules; ``adaptation`` holds the alignment losses; ``feature_cache`` trains a head on
cached features; ``recipe`` builds the flow's plans from config sections.
"""

from torchtransfer.train.learner import EpochStats, FitResult, TransferLearner, transfer_learner

__all__ = ["EpochStats", "FitResult", "TransferLearner", "transfer_learner"]
