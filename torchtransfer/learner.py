"""``transfer_learner(model, lr=..., momentum=..., nesterov=...)`` → a ``TransferLearner`` that fits and evaluates.

Training reads in-memory tensors (no DataLoader workers), draws batches and augmentations from generators
seeded by ``fit(seed=...)``, and keeps the epoch with the best validation accuracy, so the same seed on
the same machine gives the same weights.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchtransfer.adaptation import kernel_bandwidths, mmd_loss
from torchtransfer.datasets import Domain
from torchtransfer.evaluation import classification_metrics
from torchtransfer.models import set_strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_acc: float | None


@dataclass(frozen=True)
class FitResult:
    history: tuple[EpochStats, ...]
    best_epoch: int
    best_val_acc: float | None


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use cpu or auto")
    return torch.device(device)


def random_affine(x: Tensor, gen: torch.Generator, degrees: float = 15.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """Per-image random rotation, scaling and translation of a batch (N, C, H, W), zero padding."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(n, generator=gen) * (scale[1] - scale[0])
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 2 * translate  # normalised coords span 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


class TransferLearner:
    """Fits a model with one of the strategies, optionally aligning source and target features by MMD."""

    def __init__(self, model: nn.Module, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False,
                 weight_decay: float = 0.0, device: str = "auto") -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay

    def fit(self, train: Domain, epochs: int, strategy: str = "fine_tune", *, val_data: Domain | None = None,
            target: Domain | None = None, adaptation_weight: float = 0.0, batch_size: int = 64,
            augment: bool = False, seed: int = 0,
            on_epoch: Callable[[EpochStats], None] | None = None) -> FitResult:
        """Train for ``epochs`` epochs; return the per-epoch history and restore the best epoch's weights.

        Loss per step: cross-entropy on a labelled batch (source plus any labelled target images)
        + ``adaptation_weight`` · MMD²(features of that batch, features of an unlabelled target batch).
        ``on_epoch`` sees each epoch's stats (log them, or raise to stop: e.g. a pruner).
        """
        params = set_strategy(self.model, strategy)
        opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                              weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        x, y = self._labelled(train, target)
        align = target is not None and adaptation_weight > 0
        bandwidths = self._bandwidths(target.x, seed) if align else ()
        history: list[EpochStats] = []
        best: tuple[float, int, dict] | None = None
        for epoch in range(1, epochs + 1):
            loss = self._epoch(opt, x, y, target, adaptation_weight if align else 0.0, bandwidths,
                               batch_size, augment, gen)
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at epoch {epoch} (lr={self.lr})")
            val_acc = self.evaluate(val_data)["acc"] if val_data is not None else None
            stats = EpochStats(epoch, loss, val_acc)
            history.append(stats)
            log.info("epoch %d/%d  train/loss %.4f  val/acc %s", epoch, epochs, loss,
                     "-" if val_acc is None else f"{val_acc:.4f}")
            if val_acc is not None and (best is None or val_acc > best[0]):
                best = (val_acc, epoch, copy.deepcopy(self.model.state_dict()))
            if on_epoch is not None:
                on_epoch(stats)
        if best is not None:
            self.model.load_state_dict(best[2])
        best_epoch = best[1] if best else epochs
        return FitResult(tuple(history), best_epoch, best[0] if best else None)

    def _labelled(self, train: Domain, target: Domain | None) -> tuple[Tensor, Tensor]:
        xs, ys = [train.x[train.y >= 0]], [train.y[train.y >= 0]]
        if target is not None:
            xs.append(target.x[target.y >= 0])
            ys.append(target.y[target.y >= 0])
        x, y = torch.cat(xs), torch.cat(ys)
        if len(y) == 0:
            raise ValueError("no labelled training images: every label is hidden (-1)")
        return x, y

    @torch.no_grad()
    def _bandwidths(self, target_x: Tensor, seed: int) -> tuple[float, ...]:
        self.model.eval()
        sample = target_x[:512].to(self.device)
        return kernel_bandwidths(self.model.features(sample).cpu(), seed)

    def _epoch(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, target: Domain | None,
               weight: float, bandwidths: tuple[float, ...], batch_size: int, augment: bool,
               gen: torch.Generator) -> float:
        self.model.train()
        order = torch.randperm(len(y), generator=gen)
        t_order = torch.randperm(len(target), generator=gen) if weight > 0 else None
        total, steps = 0.0, 0
        for i, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start: start + batch_size]
            if len(idx) < 2:
                continue
            xb = x[idx]
            xb = random_affine(xb, gen) if augment else xb
            xb, yb = xb.to(self.device), y[idx].to(self.device)
            feats = self.model.features(xb)
            loss = F.cross_entropy(self.model.head(feats), yb)
            if weight > 0:
                t_idx = t_order[(torch.arange(len(idx)) + i * batch_size) % len(t_order)]
                xt = target.x[t_idx]
                xt = random_affine(xt, gen) if augment else xt
                loss = loss + weight * mmd_loss(feats, self.model.features(xt.to(self.device)), bandwidths)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Class probabilities (N, num_classes) for images (N, C, H, W)."""
        self.model.eval()
        out = [torch.softmax(self.model(x[i: i + batch_size].to(self.device)), 1).cpu()
               for i in range(0, len(x), batch_size)]
        return torch.cat(out)

    def evaluate(self, data: Domain) -> dict[str, float]:
        """``{"acc", "macro_f1"}`` on the labelled images of ``data``."""
        mask = data.y >= 0
        pred = self.predict_proba(data.x[mask]).argmax(1)
        return classification_metrics(data.y[mask], pred, self.model.head.out_features)


def transfer_learner(model: nn.Module, lr: float = 0.001, momentum: float = 0.9, nesterov: bool = False,
                     weight_decay: float = 0.0, device: str = "auto") -> TransferLearner:
    """The article's entry point: ``transfer_learner(model, lr=0.001, momentum=0.9, nesterov=True)``."""
    return TransferLearner(model, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                           device=device)
