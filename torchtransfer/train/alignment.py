r"""Feature-alignment losses between a labelled source and an unlabelled target: DAN (multi-kernel MMD),
CORAL, DANN (gradient reversal), CDAN (conditional adversarial, entropy conditioning) and importance
re-weighting of the source loss.

Every method is an ``Aligner`` (``make_aligner``) with one call per training step::

    out = aligner(f_s, f_t, coeff, logits_s, logits_t)   # f (m, d) / (n, d) features; logits (m, C) / (n, C)
    loss = (out.source_weights * ce_per_sample).mean() + out.loss

``coeff`` is the method's weight at this point of training (``weight · ramp(p)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchtransfer.methods import ALIGNMENTS
from torchtransfer.shift import median_bandwidth

BANDWIDTH_MULTIPLIERS = (0.5, 1.0, 2.0)
CDAN_MAX_DIM = 4096  # above d·C the multilinear map f ⊗ g is replaced by its randomised version


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


# ---------------------------------------------------------------------------------------- DANN and CDAN
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


def domain_loss(disc: nn.Module, source: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of ``disc`` telling source (label 0) from target (label 1); optional per-sample
    ``weights`` (m + n,), source first."""
    logits = disc(torch.cat([source, target]))  # (m + n,)
    labels = torch.cat([source.new_zeros(len(source)), target.new_ones(len(target))])
    return F.binary_cross_entropy_with_logits(logits, labels, weight=weights)


def entropy_weights(probs: Tensor) -> Tensor:
    r"""CDAN's entropy conditioning :math:`w_i = 1 + e^{-H(g_i)}` of probabilities (N, C), normalised to
    mean 1: confident (easy to transfer) examples count more in the domain loss.

    Example:
        >>> w = entropy_weights(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        >>> bool(w[0] > w[1]) and abs(float(w.mean()) - 1) < 1e-6
        True
    """
    h = -(probs * probs.clamp_min(1e-12).log()).sum(1)  # (N,)
    w = 1.0 + torch.exp(-h)
    return w / w.mean()


class MultilinearMap(nn.Module):
    r"""CDAN's conditioning :math:`T(f, g) = f \otimes g` (N, d·C), or above ``max_dim`` the randomised
    :math:`T(f, g) = (R_f f) \odot (R_g g) / \sqrt{k}` with fixed Gaussian :math:`R_f` (k, d), :math:`R_g`
    (k, C) (Long et al., NeurIPS 2018, Sec. 3.2), whose inner products approximate those of f ⊗ g."""

    def __init__(self, feature_dim: int, num_classes: int, max_dim: int = CDAN_MAX_DIM) -> None:
        super().__init__()
        self.randomised = feature_dim * num_classes > max_dim
        self.out_dim = max_dim if self.randomised else feature_dim * num_classes
        if self.randomised:
            self.register_buffer("rf", torch.randn(feature_dim, max_dim))
            self.register_buffer("rg", torch.randn(num_classes, max_dim))

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        if self.randomised:
            return (f @ self.rf) * (g @ self.rg) / math.sqrt(self.out_dim)  # (N, k)
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)  # (N, C·d)


def importance_weights(target_logits: Tensor, max_weight: float, power: float = 1.0) -> Tensor:
    r"""w = (p(t|x)/p(s|x))^α = exp(α·logit), clipped to ``max_weight`` and normalised to mean 1; shape (m,).

    α = ``power`` < 1 flattens the weights (Shimodaira, 2000): less variance for some bias.

    Example:
        >>> importance_weights(torch.tensor([0.0, 0.0, 100.0]), max_weight=4.0).tolist()
        [0.5, 0.5, 2.0]
    """
    w = (power * target_logits.detach()).clamp(max=math.log(max_weight)).exp()
    return w / w.mean()


def effective_sample_size(weights: Tensor) -> float:
    r"""Kish's :math:`(\sum w)^2 / \sum w^2` as a fraction of m: 1 for uniform weights, 1/m for one image."""
    return float(weights.sum() ** 2 / (weights.pow(2).sum() * len(weights)))


# ------------------------------------------------------------------------------------------------ Aligners
@dataclass(frozen=True)
class AlignOut:
    """``loss`` to add (scalar) and per-sample weights (m,) for the source cross-entropy (or None)."""

    loss: Tensor
    source_weights: Tensor | None = None


class Aligner(nn.Module):
    """Base: no alignment."""

    def forward(self, source: Tensor, target: Tensor, coeff: float, source_logits: Tensor | None = None,
                target_logits: Tensor | None = None) -> AlignOut:
        return AlignOut(source.new_zeros(()))


class DAN(Aligner):
    """coeff · MK-MMD²(f_s, f_t) with bandwidths fixed at construction."""

    def __init__(self, bandwidths: Sequence[float]) -> None:
        super().__init__()
        self.bandwidths = tuple(bandwidths)

    def forward(self, source, target, coeff, source_logits=None, target_logits=None) -> AlignOut:
        return AlignOut(coeff * mmd_loss(source, target, self.bandwidths))


class CORAL(Aligner):
    """coeff · CORAL(f_s, f_t)."""

    def forward(self, source, target, coeff, source_logits=None, target_logits=None) -> AlignOut:
        return AlignOut(coeff * coral_loss(source, target))


class DANN(Aligner):
    """Domain classifier behind gradient reversal: it learns to tell the domains apart (full gradient) while
    the reversed gradient, scaled by ``coeff``, trains the features to confuse it."""

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.disc = domain_classifier(feature_dim, hidden)

    def forward(self, source, target, coeff, source_logits=None, target_logits=None) -> AlignOut:
        return AlignOut(domain_loss(self.disc, grad_reverse(source, coeff), grad_reverse(target, coeff)))


class CDAN(Aligner):
    r"""CDAN+E (Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS 2018): the domain
    classifier sees :math:`T(f, g)` with g = softmax(logits) (detached), behind gradient reversal, so the
    features align per predicted class (the joint of features and predictions), not only marginally:

    .. math:: \min_D \max_F\; \frac{1}{m+n}\sum_i w_i\,\mathrm{BCE}(D(T(f_i, g_i)), d_i), \quad
              w_i = 1 + e^{-H(g_i)} \text{ (normalised per domain)}
    """

    def __init__(self, feature_dim: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.map = MultilinearMap(feature_dim, num_classes)
        self.disc = domain_classifier(self.map.out_dim, hidden)

    def forward(self, source, target, coeff, source_logits=None, target_logits=None) -> AlignOut:
        if source_logits is None or target_logits is None:
            raise ValueError("cdan conditions on the classifier's predictions: pass source and target logits")
        gs, gt = source_logits.detach().softmax(1), target_logits.detach().softmax(1)  # (m, C), (n, C)
        weights = torch.cat([entropy_weights(gs), entropy_weights(gt)])  # (m + n,)
        hs, ht = self.map(source, gs), self.map(target, gt)
        return AlignOut(domain_loss(self.disc, grad_reverse(hs, coeff), grad_reverse(ht, coeff), weights))


class Reweight(Aligner):
    """A domain classifier on detached features gives importance weights for the source loss; the features
    themselves are not pushed (``coeff`` is unused)."""

    def __init__(self, feature_dim: int, hidden: int, max_weight: float, power: float = 1.0) -> None:
        super().__init__()
        self.disc = domain_classifier(feature_dim, hidden)
        self.max_weight, self.power = max_weight, power

    def forward(self, source, target, coeff, source_logits=None, target_logits=None) -> AlignOut:
        s, t = source.detach(), target.detach()
        loss = domain_loss(self.disc, s, t)
        weights = importance_weights(self.disc(s), self.max_weight, self.power)  # (m,)
        return AlignOut(loss, weights)


def make_aligner(method: str, feature_dim: int, num_classes: int = 10, target_features: Tensor | None = None,
                 seed: int = 0, hidden: int = 256, max_importance_weight: float = 10.0,
                 importance_power: float = 1.0) -> Aligner:
    """The ``Aligner`` of ``method`` (one of ``ALIGNMENTS``); DAN fixes its bandwidths from
    ``target_features`` (N, d); new layers (domain classifiers, CDAN's random map) are drawn from ``seed``."""
    if method not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {method!r}; expected one of {ALIGNMENTS}")
    if method == "dan":
        if target_features is None:
            raise ValueError("dan needs target features to fix its kernel bandwidths")
        return DAN(kernel_bandwidths(target_features, seed))
    if method == "coral":
        return CORAL()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if method == "dann":
            return DANN(feature_dim, hidden)
        if method == "cdan":
            return CDAN(feature_dim, num_classes, hidden)
        return Reweight(feature_dim, hidden, max_importance_weight, importance_power)
