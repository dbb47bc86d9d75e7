"""``TrainPlan``: everything one training run needs, in one frozen object.

The flow builds its plans in one place (``torchtransfer.train.recipe``) from config sections and the tuned
``HParams``; interactive use passes the same fields as keywords to ``TransferLearner.fit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torchtransfer.data.augment import Affine, as_augment
from torchtransfer.train.adaptation import AdaptationSpec
from torchtransfer.train.optim import OptimConfig
from torchtransfer.train.strategies import check_strategy


@dataclass(frozen=True)
class TrainPlan:
    """One run of ``TransferLearner.fit``.

    Attributes:
        epochs: at most this many epochs (≥ 1); the best by validation accuracy is restored.
        strategy: ``feature_extraction`` | ``fine_tune`` | ``partial`` | ``gradual``.
        optim: optimiser, learning rates and schedule.
        adaptation: the domain-adaptation method and its weights (``"dann"`` is read as ``AdaptationSpec("dann")``).
        augment: the random affine (``True`` for the default ranges), or None / False for none.
        target_augment: the target batch's weak view (what FixMatch's pseudo-labels, SHOT's losses and the
            alignment read): an ``Affine``, False for the raw images, or None for ``augment``'s. FixMatch's weak
            view is a small shift (Sohn et al. 2020: flip and ±12.5 % translation); the source's ±15°, zoom
            0.7–1.3 makes noisier pseudo-labels on USPS→MNIST (docs/benchmarks.md).
        batch_size: images per step (source and target alike).
        unfreeze: trunk blocks that train under ``partial`` (and per epoch under ``gradual``).
        patience: stop after this many epochs without a better validation accuracy (None: never).
        seed: seeds batches, augmentation, dropout and the new layers of the aligner.
        ema_decay: evaluate, select and return the exponential moving average of the weights with this decay
            (``torchtransfer.train.averaging``); None: the raw weights.
        feature_cache: None = on whenever exact (``feature_extraction``, no augmentation, no adaptation, no
            ``ema_decay``).
        device: ``auto`` | ``cpu`` | ``cuda``.
    """

    epochs: int
    strategy: str = "fine_tune"
    optim: OptimConfig = field(default_factory=OptimConfig)
    adaptation: AdaptationSpec | str | None = None
    augment: Affine | bool | None = None
    target_augment: Affine | bool | None = None
    batch_size: int = 64
    unfreeze: int = 1
    patience: int | None = None
    seed: int = 0
    ema_decay: float | None = None
    feature_cache: bool | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if self.epochs is None or self.epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        spec = self.adaptation
        spec = AdaptationSpec() if spec is None else AdaptationSpec(method=spec) if isinstance(spec, str) else spec
        object.__setattr__(self, "adaptation", spec)
        object.__setattr__(self, "augment", as_augment(bool(self.augment) if self.augment is None else self.augment))
        weak = self.augment if self.target_augment is None else as_augment(self.target_augment)
        object.__setattr__(self, "target_augment", weak)
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if self.feature_cache and not self.cacheable:
            raise ValueError("feature_cache needs strategy 'feature_extraction', augment=False, no adaptation "
                             "and ema_decay=None")

    @property
    def cacheable(self) -> bool:
        """Whether the frozen trunk's features are the same every epoch (so they can be cached exactly)."""
        return (self.strategy == "feature_extraction" and self.augment is None and self.adaptation.method == "none"
                and self.ema_decay is None)

    def with_(self, **changes) -> TrainPlan:
        """A copy with ``changes`` (e.g. ``plan.with_(epochs=1)``)."""
        return replace(self, **changes)
