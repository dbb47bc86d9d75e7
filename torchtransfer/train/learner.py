"""``transfer_learner(model, lr=..., momentum=..., nesterov=...)`` → a ``TransferLearner`` that fits and evaluates.

``fit`` trains with a strategy (``torchtransfer.train.strategies``), an optimiser and schedule
(``torchtransfer.train.optim``) and optionally a domain-adaptation method (``torchtransfer.train.adaptation``).
Per step:

.. math:: L = \\frac1m \\sum_i w_i\\,\\mathrm{CE}_\\epsilon(h(f(x^s_i)), y_i) + L_\\text{adapt}

with label smoothing ε, importance weights w (reweight; else 1) and the method's adaptation terms (alignment,
entropy, self-training: ``torchtransfer.train.adaptation``); a source-free method drops the source term, reads no
source image and keeps the classifier head frozen. FixMatch's strong view is ``RandAugment`` of the raw target
batch, its weak view the plan's ``target_augment``; SHOT's pseudo-labels are refreshed before every epoch. With
``ema_decay`` the model evaluated and kept after every epoch is the moving average of the weights
(``torchtransfer.train.averaging``), and a tie in validation accuracy goes to the later epoch, whose average
spans more steps (200 validation images tie often: one image is 0.5 points). It keeps the epoch with the best
validation accuracy, stops early after ``patience`` epochs without improvement, and calls ``on_epoch(stats)``
after every epoch (raise there to stop, e.g. an Optuna pruner). Batches and augmentation come from a generator
seeded by ``fit(seed=...)``: the same seed on the same machine gives the same weights. CUDA (AMP, pinned memory,
channels_last) and CPU share one path.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchtransfer.data import batches
from torchtransfer.data.augment import RandAugment
from torchtransfer.devices import resolve_device
from torchtransfer.evaluation import classification_metrics
from torchtransfer.progress import track
from torchtransfer.train import strategies
from torchtransfer.train.adaptation import Adaptation, make_adaptation
from torchtransfer.train.averaging import WeightAverage
from torchtransfer.train.feature_cache import fit_head_on_cache
from torchtransfer.train.features import to_device, trunk_features
from torchtransfer.train.optim import OptimConfig, make_optimizer, make_scheduler
from torchtransfer.train.plan import TrainPlan
from torchtransfer.train.results import EpochStats, FitResult
from torchtransfer.train.selection import improves

log = logging.getLogger(__name__)


class TransferLearner:
    """Fits ``model`` (built by ``torchtransfer.models``: ``features``, ``head``, ``blocks``) on labelled data."""

    def __init__(self, model: nn.Module, optim: OptimConfig, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.cuda = self.device.type == "cuda"
        self.model = model.to(self.device, memory_format=torch.channels_last) if self.cuda else model.to(self.device)
        self.optim = optim

    def fit(self, train: batches.Data | None, epochs: int | None = None, strategy: str = "fine_tune", *,
            plan: TrainPlan | None = None, val_data: batches.Data | None = None, target: batches.Data | None = None,
            on_epoch: Callable[[EpochStats], None] | None = None,
            selector: Callable[[TransferLearner], tuple[float, dict[str, float]]] | None = None,
            **settings) -> FitResult:
        """Train by ``plan`` (or by its fields given as keywords: ``fit(data, epochs=5, patience=2)``); restore
        the best epoch (by ``val_data`` accuracy) and return the history.

        ``target`` (images; labels of -1 hidden) feeds the adaptation method; its labelled images, if any, join
        the training set. A source-free method (``AdaptationSpec(source_free=True)``) never reads ``train``
        (None is fine): its epochs are passes over ``target``. With a ``plan`` its optimiser replaces the
        learner's. ``on_epoch(stats)`` runs after every epoch and may raise to stop (e.g.
        ``optuna.TrialPruned``). ``selector(learner)`` → ``(score, metrics)`` after every epoch makes ``score``
        the objective of model selection and early stopping in place of ``val_data`` accuracy (e.g. a label-free
        validator: ``torchtransfer.train.selection``).
        """
        if plan is None:
            plan = TrainPlan(epochs=epochs, strategy=strategy, optim=self.optim, **settings)
        elif epochs is not None or settings:
            raise TypeError("pass either plan=TrainPlan(...) or its fields as keywords, not both")
        self.optim = plan.optim
        spec = plan.adaptation
        if spec.method != "none" and target is None:
            raise ValueError(f"adaptation method {spec.method!r} needs target data")
        data = None if spec.source_free else batches.labelled(train, target)  # source-free: never read
        gen = torch.Generator().manual_seed(plan.seed)
        with torch.random.fork_rng(devices=[]):  # dataset transforms and dropout draw from the global RNG
            torch.manual_seed(plan.seed)
            if plan.cacheable and plan.feature_cache is not False:
                run = fit_head_on_cache(self.model, self.optim, self.device, data, val_data, plan.epochs,
                                        plan.batch_size, gen)
            else:
                run = self._fit_loop(data, val_data, target if spec.method != "none" else None, plan, gen)
            return self._select(run, plan.epochs, plan.patience, on_epoch, selector,
                                later_ties=plan.ema_decay is not None)

    def _select(self, run, epochs: int, patience: int | None, on_epoch: Callable[[EpochStats], None] | None,
                selector=None, later_ties: bool = False) -> FitResult:
        """Drive the epoch generator ``run``: score, log, keep the best weights, stop early, call ``on_epoch``.
        A tie with the best objective so far keeps the earlier epoch, or the later one with ``later_ties``."""
        history: list[EpochStats] = []
        best: tuple[float, int, dict] | None = None
        stopped = False
        with track("epochs", total=epochs) as bar:
            for stats in run:
                if not math.isfinite(stats.train_loss):
                    raise FloatingPointError(f"training loss became {stats.train_loss} at epoch {stats.epoch} "
                                             f"(lr={self.optim.lr})")
                if selector is not None:
                    score, metrics = selector(self)
                    stats = replace(stats, score=score, metrics=metrics,
                                    val_acc=stats.val_acc if stats.val_acc is not None else metrics.get("val/acc"))
                history.append(stats)
                log.info("epoch %d/%d  train/loss %.4f  val/acc %s%s", stats.epoch, epochs, stats.train_loss,
                         "-" if stats.val_acc is None else f"{stats.val_acc:.4f}",
                         "" if stats.score is None else f"  objective {stats.score:.4f}")
                if stats.objective is not None and improves(stats.objective, best and best[0], later_ties):
                    best = (stats.objective, stats.epoch, copy.deepcopy(self.model.state_dict()))
                if on_epoch is not None:
                    on_epoch(stats)
                bar.advance()
                if patience is not None and best is not None and stats.epoch - best[1] >= patience:
                    stopped = stats.epoch < epochs
                    break
        run.close()
        if best is not None:
            self.model.load_state_dict(best[2])
        best_epoch = best[1] if best else len(history)
        best_acc = next((s.val_acc for s in history if s.epoch == best_epoch), None)
        return FitResult(tuple(history), best_epoch, best_acc, stopped, best[0] if best else None)

    def _fit_loop(self, data, val_data, target, plan: TrainPlan, gen: torch.Generator):
        """Yield ``EpochStats`` per epoch of end-to-end training (with adaptation when ``target`` is given)."""
        spec, epochs, batch_size = plan.adaptation, plan.epochs, plan.batch_size
        blocks = strategies.blocks_of(self.model)
        adaptation = self._adaptation(spec, target, gen) if target is not None else None
        extra = (adaptation,) if adaptation is not None else ()
        opt = make_optimizer(strategies.param_groups(self.model, self.optim.lr, self.optim.lr_mult, extra),
                             self.optim)
        steps = batches.n_batches(len(target) if spec.source_free else len(data), batch_size)
        sched = make_scheduler(opt, self.optim, steps, epochs)
        scaler = torch.amp.GradScaler("cuda", enabled=self.cuda)
        t_iter = batches.endless(target, batch_size, gen, self.cuda) if target is not None else None
        average = WeightAverage(self.model, plan.ema_decay) if plan.ema_decay is not None else None
        for epoch in range(1, epochs + 1):
            if adaptation is not None and adaptation.needs_pseudo_labels:
                feats = self.features(batches.in_order(target, 512))  # (N, d), eval mode, no augmentation
                with torch.no_grad():
                    adaptation.refresh(feats, self.model.head(feats.to(self.device)).float().cpu())
            k = strategies.n_trainable_blocks(plan.strategy, len(blocks), epoch, plan.unfreeze)
            strategies.freeze(self.model, k)
            if spec.source_free:  # SHOT's hypothesis transfer: the source classifier stays as it is
                self.model.head.requires_grad_(False)
            strategies.train_mode(self.model, k)
            if adaptation is not None:
                adaptation.train()
            total, n = 0.0, 0
            source = iter(()) if spec.source_free else batches.epoch_batches(data, batch_size, gen, self.cuda)
            for step in range(steps):
                xb, yb = (None, None) if spec.source_free else next(source)
                xt, t_idx = next(t_iter) if t_iter is not None else (None, None)
                xb, xt, strong = self._views(xb, xt, plan, adaptation, gen)
                progress = ((epoch - 1) * steps + step) / max(epochs * steps, 1)
                total += self._step(xb, yb, (xt, strong, t_idx), adaptation, progress, opt, scaler)
                sched.step()
                if average is not None:
                    average.update(self.model)
                n += 1
            raw = average.load_into(self.model) if average is not None else None  # evaluate the average
            val = self.evaluate(val_data)["acc"] if val_data is not None else None
            yield EpochStats(epoch, total / max(n, 1), val, opt.param_groups[-1]["lr"])
            if raw is not None:  # the raw weights train on (a stop at the yield keeps the average)
                self.model.load_state_dict(raw)
        if average is not None:  # the last epoch's model is the average too
            self.model.load_state_dict(average.state)

    def _adaptation(self, spec, target, gen: torch.Generator) -> Adaptation:
        t_feats = self.features(batches.in_order(target, 256), limit=512) if spec.alignment == "dan" else None
        return make_adaptation(spec, self.model.feature_dim, self.model.head.out_features, len(target), t_feats,
                               seed=int(gen.initial_seed())).to(self.device)

    @staticmethod
    def _views(xb, xt, plan: TrainPlan, adaptation, gen: torch.Generator):
        """The augmented source batch (``plan.augment``), the target's weak view (``plan.target_augment``) and,
        for FixMatch, its strong view (``RandAugment`` of the raw images)."""
        if plan.augment is not None and xb is not None:
            xb = plan.augment(xb, gen)
        weak = plan.target_augment(xt, gen) if plan.target_augment is not None and xt is not None else xt
        strong = RandAugment()(xt, gen) if adaptation is not None and adaptation.needs_strong_view else None
        return xb, weak, strong

    def _step(self, xb: Tensor | None, yb: Tensor | None, target: tuple, adaptation: Adaptation | None,
              progress: float, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> float:
        xt, strong, t_idx = target
        with torch.autocast(self.device.type, enabled=self.cuda):
            if adaptation is None:
                loss = F.cross_entropy(self.model(self._to(xb)).float(), yb.to(self.device, non_blocking=True),
                                       reduction="none", label_smoothing=self.optim.label_smoothing).mean()
            else:
                source = None if xb is None else (self._to(xb), yb.to(self.device, non_blocking=True))
                loss = adaptation(self.model, source, self._to(xt), None if strong is None else self._to(strong),
                                  None if t_idx is None else t_idx.to(self.device), progress,
                                  self.optim.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.optim.clip_grad_norm is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.optim.clip_grad_norm)
        scaler.step(opt)
        scaler.update()
        return float(loss.detach())

    def _to(self, x: Tensor) -> Tensor:
        return to_device(x, self.device)

    def features(self, pairs, limit: int | None = None) -> Tensor:
        """Trunk features (N, d) in eval mode for the images of ``(x, y)`` batches (at most ``limit``)."""
        return trunk_features(self.model, pairs, self.device, limit)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Class probabilities (N, num_classes) for images (N, C, H, W)."""
        self.model.eval()
        out = []
        for i in range(0, len(x), batch_size):
            with torch.autocast(self.device.type, enabled=self.cuda):
                out.append(torch.softmax(self.model(self._to(x[i: i + batch_size])).float(), 1).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, data: batches.Data) -> dict[str, float]:
        """``{"acc", "macro_f1"}`` on the labelled images of ``data`` (a Domain or a Dataset)."""
        self.model.eval()
        preds, labels = [], []
        for x, y in batches.in_order(data, 512):
            keep = y >= 0
            with torch.autocast(self.device.type, enabled=self.cuda):
                preds.append(self.model(self._to(x[keep])).argmax(1).cpu())
            labels.append(y[keep])
        return classification_metrics(torch.cat(labels), torch.cat(preds), self.model.head.out_features)


def transfer_learner(model: nn.Module, lr: float = 0.001, momentum: float = 0.9, nesterov: bool = False,
                     weight_decay: float = 0.0, device: str = "auto", **optim) -> TransferLearner:
    """The entry point: ``transfer_learner(model, lr=0.001, momentum=0.9, nesterov=True)``.

    Further keywords go to ``OptimConfig``: ``optimizer`` (sgd | adamw), ``lr_mult`` (backbone lr = lr ·
    lr_mult), ``schedule`` (constant | cosine | onecycle), ``warmup_epochs``, ``label_smoothing``,
    ``clip_grad_norm``.
    """
    cfg = OptimConfig(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, **optim)
    return TransferLearner(model, cfg, device=device)

