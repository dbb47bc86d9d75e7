r"""Domain adaptation during ``fit``: an alignment loss (``torchtransfer.train.alignment``), self-training
losses (``torchtransfer.train.self_training``), or one of each composed, declared as one method string.

A method is ``none``, one name of ``METHODS``, or names joined by ``+`` (in config also a list)::

    dan                 MK-MMD between source and target features
    cdan+fixmatch       conditional adversarial alignment plus thresholded weak/strong pseudo-labels
    shot                SHOT's IM + clustering pseudo-labels (with ``source_free``: no source image read)

At most one alignment loss takes part; self-training losses add to it. Per step, with progress
:math:`p \in [0, 1]` and the DANN ramp :math:`\rho(p) = 2 / (1 + e^{-10 p}) - 1` (or 1 under ``constant``):

.. math:: L = \frac1m \sum_i w_i\,\mathrm{CE}_\epsilon(h(f(x^s_i)), y_i) + L_\text{align}(\lambda\rho(p))
          + \eta\,\rho(p)\,H(h(f(x^t))) + \mu\,\rho(p)\,\ell_\text{FixMatch}
          + \gamma\,L_\text{IM} + \beta\,\mathrm{CE}(h(f(x^t)), \hat y^\text{SHOT})

(weights w from ``reweight``, else 1; each term only when its method is part; source-free drops the source
terms, and ``fit`` freezes the classifier head, SHOT's hypothesis transfer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchtransfer.methods import ALIGNMENTS, METHODS, SELF_TRAINING, parse_method
from torchtransfer.train.alignment import Aligner, effective_sample_size, make_aligner
from torchtransfer.train.self_training import (
    cluster_pseudo_labels,
    entropy,
    fixmatch_loss,
    information_maximisation,
)

__all__ = ["ALIGNMENTS", "METHODS", "SELF_TRAINING", "AdaptationSpec", "Adaptation", "entropy", "make_adaptation",
           "parse_method", "ramp"]


@dataclass(frozen=True)
class AdaptationSpec:
    """How to adapt during ``fit``.

    Attributes:
        method: see the module docstring (a list is joined into the canonical string).
        weight: λ, the alignment weight (DANN/CDAN: the gradient-reversal coefficient; reweight: unused).
        schedule: ``ramp`` (×ρ(p), DANN paper) or ``constant``; applies to λ, η and μ.
        entropy_weight: η, target entropy minimisation; 0 turns it off; ignored by ``none``.
        max_importance_weight: reweight clips w = (p(t|x)/p(s|x))^α at this value before normalising to mean 1.
        importance_power: reweight's α (1: plain ratio; < 1 flattens the weights).
        hidden: width of the domain classifier (DANN, CDAN, reweight).
        threshold: FixMatch's confidence τ for a pseudo-label.
        fixmatch_weight: μ, FixMatch's unlabelled-loss weight.
        im_weight: γ, SHOT's information-maximisation weight.
        pseudo_label_weight: β, SHOT's weight of the cross-entropy with its clustering pseudo-labels.
        source_free: adapt from the model and target images alone (self-training methods only).
    """

    method: str = "none"
    weight: float = 1.0
    schedule: Literal["ramp", "constant"] = "ramp"
    entropy_weight: float = 0.0
    max_importance_weight: float = 10.0
    importance_power: float = 1.0
    hidden: int = 256
    threshold: float = 0.95
    fixmatch_weight: float = 1.0
    im_weight: float = 1.0
    pseudo_label_weight: float = 0.1
    source_free: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", parse_method(self.method))
        if min(self.weight, self.entropy_weight, self.fixmatch_weight, self.im_weight,
               self.pseudo_label_weight) < 0:
            raise ValueError("adaptation weights (weight, entropy_weight, fixmatch_weight, im_weight, "
                             "pseudo_label_weight) must be ≥ 0")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"adaptation.threshold must be in (0, 1], got {self.threshold}")
        if self.source_free and (self.alignment is not None or not self.self_training):
            raise ValueError(f"adaptation.source_free needs self-training only ({' | '.join(SELF_TRAINING)}); "
                             f"method {self.method!r} reads source images")

    @property
    def parts(self) -> tuple[str, ...]:
        return () if self.method == "none" else tuple(self.method.split("+"))

    @property
    def alignment(self) -> str | None:
        """The alignment loss taking part, or None."""
        return next((p for p in self.parts if p in ALIGNMENTS), None)

    @property
    def self_training(self) -> tuple[str, ...]:
        return tuple(p for p in self.parts if p in SELF_TRAINING)

    def coeff(self, progress: float) -> float:
        """ρ(p) for ``ramp``, 1 for ``constant`` (multiply by ``weight``, ``entropy_weight`` or μ)."""
        if self.schedule == "constant":
            return 1.0
        return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


def ramp(progress: float) -> float:
    r"""DANN's schedule :math:`2/(1+e^{-10p}) - 1`: 0 at p = 0, ≈ 1 at p = 1."""
    return AdaptationSpec(schedule="ramp").coeff(progress)


class Adaptation(nn.Module):
    """The composed loss of ``spec`` for one ``fit`` (its aligner's parameters train with the model).

    ``stats`` holds the last step's diagnostics: FixMatch's share of confident pseudo-labels (``mask``),
    reweight's effective sample size (``ess``), SHOT's pseudo-label agreement with the argmax (``agree``).
    """

    def __init__(self, spec: AdaptationSpec, aligner: Aligner | None, n_target: int) -> None:
        super().__init__()
        self.spec, self.aligner = spec, aligner
        self.register_buffer("pseudo_labels", torch.full((n_target,), -1, dtype=torch.long), persistent=False)
        self.stats: dict[str, float] = {}

    @property
    def needs_strong_view(self) -> bool:
        return "fixmatch" in self.spec.parts

    @property
    def needs_pseudo_labels(self) -> bool:
        return "shot" in self.spec.parts and self.spec.pseudo_label_weight > 0

    @torch.no_grad()
    def refresh(self, features: Tensor, logits: Tensor) -> None:
        """SHOT: new pseudo-labels (N,) for the whole target set from its features (N, d) and logits (N, C)."""
        labels = cluster_pseudo_labels(features, logits.float().softmax(1))
        self.pseudo_labels = labels.to(self.pseudo_labels.device)
        self.stats["agree"] = float((labels == logits.argmax(1).to(labels.device)).float().mean())

    def forward(self, model: nn.Module, source: tuple[Tensor, Tensor] | None, target: Tensor,
                strong: Tensor | None, index: Tensor | None, progress: float,
                label_smoothing: float = 0.0) -> Tensor:
        """The step's loss. ``source`` (x (m, C, H, W), y (m,)) or None (source-free); ``target`` the weak
        view (n, C, H, W); ``strong`` its strong view (FixMatch); ``index`` (n,) target positions (SHOT)."""
        spec, rho = self.spec, self.spec.coeff(progress)
        if source is not None:  # source first: BatchNorm running statistics update in the same order as ever
            fs = model.features(source[0])  # (m, d)
            ls = model.head(fs).float()
            ce = F.cross_entropy(ls, source[1], reduction="none", label_smoothing=label_smoothing)  # (m,)
        ft = model.features(target)  # (n, d)
        lt = model.head(ft).float()  # (n, C)
        loss = lt.new_zeros(())
        if source is not None:
            weights = None
            if self.aligner is not None:
                out = self.aligner(fs.float(), ft.float(), spec.weight * rho, ls, lt)
                loss, weights = loss + out.loss, out.source_weights
            if weights is not None:
                self.stats["ess"] = effective_sample_size(weights)
            loss = loss + ((ce * weights).mean() if weights is not None else ce.mean())
        if spec.entropy_weight > 0:
            loss = loss + spec.entropy_weight * rho * entropy(lt)
        if self.needs_strong_view:
            if strong is None:
                raise ValueError("fixmatch needs the strong view of the target batch")
            unlabelled, mask = fixmatch_loss(lt, model(strong).float(), spec.threshold)
            loss = loss + spec.fixmatch_weight * rho * unlabelled
            self.stats["mask"] = float(mask.mean())
        if "shot" in spec.parts:
            loss = loss + spec.im_weight * information_maximisation(lt)
            if self.needs_pseudo_labels:
                if index is None or bool((self.pseudo_labels[index] < 0).any()):
                    raise ValueError("shot needs the target positions of the batch and refresh() each epoch")
                loss = loss + spec.pseudo_label_weight * F.cross_entropy(lt, self.pseudo_labels[index])
        return loss


def make_adaptation(spec: AdaptationSpec, feature_dim: int, num_classes: int, n_target: int,
                    target_features: Tensor | None = None, seed: int = 0) -> Adaptation:
    """The ``Adaptation`` of ``spec``; DAN fixes its bandwidths from ``target_features`` (N, d); new layers
    are drawn from ``seed``."""
    aligner = None
    if spec.alignment is not None:
        aligner = make_aligner(spec.alignment, feature_dim, num_classes, target_features, seed, spec.hidden,
                               spec.max_importance_weight, spec.importance_power)
    return Adaptation(spec, aligner, n_target)
