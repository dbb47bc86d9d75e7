r"""Self-training losses on unlabelled target images: FixMatch-style confidence-thresholded pseudo-labels
with weak/strong consistency, and SHOT's information maximisation with clustering-refined pseudo-labels.

Both only need the model's outputs on target images, so both work *source-free* (SHOT's setting: adapt the
source model with unlabelled target data alone, no source image read).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def entropy(logits: Tensor) -> Tensor:
    r"""Mean prediction entropy :math:`-\frac1n\sum_i \sum_c p_{ic} \log p_{ic}` of (n, C) logits."""
    logp = F.log_softmax(logits, 1)
    return -(logp.exp() * logp).sum(1).mean()


def fixmatch_loss(weak_logits: Tensor, strong_logits: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    r"""FixMatch (Sohn et al., NeurIPS 2020) on a target batch: the weak view's confident predictions are the
    hard pseudo-labels of the strong view.

    .. math:: \ell_u = \frac1n \sum_i \mathbb{1}[\max_c q_{ic} \ge \tau]\;
              \mathrm{CE}(\hat y_i, p(y \mid \mathcal{A}(x_i))), \quad q = \mathrm{softmax}(\text{weak}),
              \hat y_i = \arg\max_c q_{ic}

    (mean over all n images, masked ones count as 0, as in the paper; no gradient through q).

    Args:
        weak_logits: (n, C) on the weakly augmented view (detached here).
        strong_logits: (n, C) on the strongly augmented view of the same images.
        threshold: τ; the paper uses 0.95.

    Returns:
        ``(loss, mask)``: the scalar loss and the (n,) float mask of images above τ.

    Example:
        >>> weak = torch.tensor([[9.0, 0.0], [0.1, 0.0]])
        >>> loss, mask = fixmatch_loss(weak, torch.zeros(2, 2), 0.95)
        >>> mask.tolist(), round(float(loss), 4)  # only the first is confident: CE = log 2, halved
        ([1.0, 0.0], 0.3466)
    """
    q = weak_logits.detach().float().softmax(1)
    confidence, pseudo = q.max(1)
    mask = (confidence >= threshold).float()
    return (F.cross_entropy(strong_logits.float(), pseudo, reduction="none") * mask).mean(), mask


def information_maximisation(logits: Tensor, eps: float = 1e-5) -> Tensor:
    r"""SHOT's IM loss (Liang et al., ICML 2020, Eq. 2): confident predictions per image, diverse over the
    batch.

    .. math:: L_\text{IM} = \underbrace{\frac1n\sum_i H(p_i)}_{\text{entropy}}
              \;-\; \underbrace{H(\bar p)}_{\text{diversity}}, \quad \bar p = \frac1n \sum_i p_i

    Its minimum, −log C, is one-hot predictions that use every class equally; collapsing every image onto
    one class scores 0.

    Example:
        >>> import math
        >>> diverse = torch.eye(4) * 50
        >>> collapsed = torch.zeros(4, 4); collapsed[:, 0] = 50
        >>> round(float(information_maximisation(diverse)), 3) == round(-math.log(4), 3)
        True
        >>> abs(float(information_maximisation(collapsed))) < 1e-3
        True
    """
    p = logits.float().softmax(1)  # (n, C)
    mean = p.mean(0)  # (C,)
    return entropy(logits.float()) + (mean * torch.log(mean + eps)).sum()


def cluster_pseudo_labels(features: Tensor, probs: Tensor, rounds: int = 1) -> Tensor:
    r"""SHOT's self-supervised pseudo-labels (Liang et al., ICML 2020, Eqs. 4–6): weighted k-means in the
    feature space, started from the classifier.

    With :math:`\tilde f_i = [f_i, 1] / \lVert [f_i, 1] \rVert` and cosine distance :math:`D_f`:

    .. math:: c_k^{(0)} = \frac{\sum_i p_{ik} \tilde f_i}{\sum_i p_{ik}}, \quad
              \hat y_i = \arg\min_k D_f(\tilde f_i, c_k), \quad
              c_k^{(r+1)} = \frac{\sum_i \mathbb{1}[\hat y_i = k]\, \tilde f_i}{\sum_i \mathbb{1}[\hat y_i = k]}

    then :math:`\hat y` again, ``rounds`` more times. The centroids pool every target image, so a label comes
    from the structure of the whole target set, not from one noisy prediction.

    Args:
        features: (N, d) target features (eval mode, no augmentation).
        probs: (N, C) the classifier's softmax on them.
        rounds: hard-assignment refinements after the soft start (SHOT uses 1).

    Returns:
        (N,) long pseudo-labels.

    Example:
        >>> f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> p = torch.tensor([[0.6, 0.4], [0.4, 0.6], [0.3, 0.7], [0.4, 0.6]])  # one wrong argmax
        >>> cluster_pseudo_labels(f, p).tolist()
        [0, 0, 1, 1]
    """
    f = torch.cat([features.float(), features.new_ones(len(features), 1)], 1)
    f = F.normalize(f, dim=1)  # (N, d + 1)
    weights = probs.float()  # (N, C): soft assignment
    labels = probs.argmax(1)
    for _ in range(rounds + 1):
        centroids = weights.T @ f / (weights.sum(0)[:, None] + 1e-8)  # (C, d + 1)
        labels = (f @ F.normalize(centroids, dim=1).T).argmax(1)  # max cosine = min cosine distance
        weights = F.one_hot(labels, probs.shape[1]).float()
    return labels
