r"""Domain-adaptation losses on features: DAN (multi-kernel MMD), DANN (gradient reversal), CORAL, and
importance re-weighting of the source loss.

Every method is an ``Aligner`` (``make_aligner``) with one call per training step::

    out = aligner(f_s, f_t, coeff)   # f_s (m, d) source features, f_t (n, d) target features
    loss = (out.source_weights * ce_per_sample).mean() + out.loss

``coeff`` is the method's weight at this point of training, usually ``weight · ramp(p)`` with the DANN
paper's ramp :math:`\rho(p) = 2 / (1 + e^{-10 p}) - 1` over the training progress :math:`p \in [0, 1]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchtransfer.names import METHODS
from torchtransfer.shift import median_bandwidth

Method = Literal["none", "dan", "dann", "coral", "reweight"]
BANDWIDTH_MULTIPLIERS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class AdaptationSpec:
    """How to align domains during ``fit``.

    Attributes:
        method: ``none`` | ``dan`` | ``dann`` | ``coral`` | ``reweight``.
        weight: λ, the alignment weight (DANN: the gradient-reversal coefficient; reweight: unused).
        schedule: ``ramp`` (λ·ρ(p), DANN paper) or ``constant`` (λ from the first step).
        entropy_weight: weight of target entropy minimisation (also ramped); 0 turns it off; ignored by ``none``.
        max_importance_weight: reweight clips w = p(t|x)/p(s|x) at this value before normalising to mean 1.
        hidden: width of the domain classifier (DANN, reweight).
    """

    method: Method = "none"
    weight: float = 1.0
    schedule: Literal["ramp", "constant"] = "ramp"
    entropy_weight: float = 0.0
    max_importance_weight: float = 10.0
    hidden: int = 256

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"adaptation.method {self.method!r} is not one of {METHODS}")
        if self.weight < 0 or self.entropy_weight < 0:
            raise ValueError("adaptation.weight and adaptation.entropy_weight must be ≥ 0")

    def coeff(self, progress: float) -> float:
        """ρ(p) for ``ramp``, 1 for ``constant`` (multiply by ``weight`` or ``entropy_weight``)."""
        if self.schedule == "constant":
            return 1.0
        return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


def ramp(progress: float) -> float:
    r"""DANN's schedule :math:`2/(1+e^{-10p}) - 1`: 0 at p = 0, ≈ 1 at p = 1."""
    return AdaptationSpec(schedule="ramp").coeff(progress)


# ---------------------------------------------------------------------------------------------- DAN / MMD
def kernel_bandwidths(features: Tensor, seed: int = 0) -> tuple[float, ...]:
    """Median-heuristic bandwidth of ``features`` (N, d) times (0.5, 1, 2)."""
    base = median_bandwidth(features.detach(), seed)
    return tuple(base * k for k in BANDWIDTH_MULTIPLIERS)


def mmd_loss(source: Tensor, target: Tensor, bandwidths: Sequence[float]) -> Tensor:
    r"""Differentiable unbiased MMD² under the mean of Gaussian kernels (DAN, Long et al. 2015).

    .. math:: \frac{1}{|L|}\sum_{l \in L} \widehat{\mathrm{MMD}}^2_{k_l}(S, T)

    Args:
        source: Source features, shape (m, d), m ≥ 2.
        target: Target features, shape (n, d), n ≥ 2; n may differ from m.
        bandwidths: Fixed kernel widths ``l``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = torch.randn(64, 8, generator=g)
        >>> bool(mmd_loss(s, s + 2.0, [4.0]) > mmd_loss(s, torch.randn(64, 8, generator=g), [4.0]))
        True
    """
    m, n = len(source), len(target)
    z = torch.cat([source, target])  # (m + n, d)
    d2 = torch.cdist(z, z).pow(2)
    k = torch.stack([torch.exp(-d2 / (2 * l**2)) for l in bandwidths]).mean(0)  # (m + n, m + n)
    k_xx = (k[:m, :m].sum() - k[:m, :m].diagonal().sum()) / (m * (m - 1))
    k_yy = (k[m:, m:].sum() - k[m:, m:].diagonal().sum()) / (n * (n - 1))
    return k_xx + k_yy - 2 * k[:m, m:].mean()


# --------------------------------------------------------------------------------------------------- CORAL
def coral_loss(source: Tensor, target: Tensor) -> Tensor:
    r"""CORAL (Sun & Saenko, 2016): distance between the feature covariances.

    .. math:: \frac{1}{4 d^2}\,\lVert C_S - C_T \rVert_F^2

    Args:
        source: (m, d), m ≥ 2.  target: (n, d), n ≥ 2.

    Example:
        >>> x = torch.randn(128, 4, generator=torch.Generator().manual_seed(0))
        >>> bool(coral_loss(x, x) == 0) and bool(coral_loss(x, 3 * x) > 0)
        True
    """
    d = source.shape[1]
    cs, ct = torch.cov(source.T), torch.cov(target.T)  # (d, d)
    return (cs - ct).pow(2).sum() / (4 * d * d)


# ---------------------------------------------------------------------------------------------------- DANN
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.coeff * grad, None


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Identity forward; multiplies the gradient by ``-coeff`` backward (Ganin & Lempitsky, 2015)."""
    return _GradReverse.apply(x, coeff)


def domain_classifier(in_dim: int, hidden: int) -> nn.Sequential:
    """(N, in_dim) → (N,) logit of "this feature comes from the target"."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1), nn.Flatten(0))


def domain_loss(disc: nn.Module, source: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy of ``disc`` telling source (label 0) from target (label 1)."""
    logits = disc(torch.cat([source, target]))  # (m + n,)
    labels = torch.cat([source.new_zeros(len(source)), target.new_ones(len(target))])
    return F.binary_cross_entropy_with_logits(logits, labels)


def importance_weights(target_logits: Tensor, max_weight: float) -> Tensor:
    r"""w = p(t|x)/p(s|x) = exp(logit), clipped to ``max_weight`` and normalised to mean 1; shape (m,).

    Example:
        >>> importance_weights(torch.tensor([0.0, 0.0, 100.0]), max_weight=4.0).tolist()
        [0.5, 0.5, 2.0]
    """
    w = target_logits.detach().clamp(max=math.log(max_weight)).exp()
    return w / w.mean()


def entropy(logits: Tensor) -> Tensor:
    r"""Mean prediction entropy :math:`-\frac1n\sum_i \sum_c p_{ic} \log p_{ic}` of (n, C) logits."""
    logp = F.log_softmax(logits, 1)
    return -(logp.exp() * logp).sum(1).mean()


# ------------------------------------------------------------------------------------------------ Aligners
@dataclass(frozen=True)
class AlignOut:
    """``loss`` to add (scalar) and per-sample weights (m,) for the source cross-entropy (or None)."""

    loss: Tensor
    source_weights: Tensor | None = None


class Aligner(nn.Module):
    """Base: no alignment (method ``none``)."""

    def forward(self, source: Tensor, target: Tensor, coeff: float) -> AlignOut:
        return AlignOut(source.new_zeros(()))


class DAN(Aligner):
    """coeff · MK-MMD²(f_s, f_t) with bandwidths fixed at construction."""

    def __init__(self, bandwidths: Sequence[float]) -> None:
        super().__init__()
        self.bandwidths = tuple(bandwidths)

    def forward(self, source: Tensor, target: Tensor, coeff: float) -> AlignOut:
        return AlignOut(coeff * mmd_loss(source, target, self.bandwidths))


class CORAL(Aligner):
    """coeff · CORAL(f_s, f_t)."""

    def forward(self, source: Tensor, target: Tensor, coeff: float) -> AlignOut:
        return AlignOut(coeff * coral_loss(source, target))


class DANN(Aligner):
    """Domain classifier behind gradient reversal: it learns to tell the domains apart (full gradient) while
    the reversed gradient, scaled by ``coeff``, trains the features to confuse it."""

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.disc = domain_classifier(feature_dim, hidden)

    def forward(self, source: Tensor, target: Tensor, coeff: float) -> AlignOut:
        return AlignOut(domain_loss(self.disc, grad_reverse(source, coeff), grad_reverse(target, coeff)))


class Reweight(Aligner):
    """A domain classifier on detached features gives importance weights for the source loss; the features
    themselves are not pushed (``coeff`` is unused)."""

    def __init__(self, feature_dim: int, hidden: int, max_weight: float) -> None:
        super().__init__()
        self.disc = domain_classifier(feature_dim, hidden)
        self.max_weight = max_weight

    def forward(self, source: Tensor, target: Tensor, coeff: float) -> AlignOut:
        s, t = source.detach(), target.detach()
        loss = domain_loss(self.disc, s, t)
        weights = importance_weights(self.disc(s), self.max_weight)  # (m,)
        return AlignOut(loss, weights)


def make_aligner(spec: AdaptationSpec, feature_dim: int, target_features: Tensor | None = None,
                 seed: int = 0) -> Aligner:
    """The ``Aligner`` for ``spec.method``; DAN fixes its bandwidths from ``target_features`` (N, d);
    domain classifiers are initialised from ``seed``."""
    if spec.method == "dan":
        if target_features is None:
            raise ValueError("dan needs target features to fix its kernel bandwidths")
        return DAN(kernel_bandwidths(target_features, seed))
    if spec.method == "coral":
        return CORAL()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.method == "dann":
            return DANN(feature_dim, spec.hidden)
        if spec.method == "reweight":
            return Reweight(feature_dim, spec.hidden, spec.max_importance_weight)
    return Aligner()
