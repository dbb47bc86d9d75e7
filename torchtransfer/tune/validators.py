r"""Label-free validators: scores of a model on *unlabelled* target data (plus labelled source data where the
method needs it), higher = better, so that tuning and model selection can run when the target has no labels.

Inputs are a model's outputs, not the model: target probabilities :math:`P \in [0,1]^{n \times K}` (rows sum
to 1), target features :math:`F_t \in \mathbb{R}^{n \times d}`, and for DEV/source accuracy the labelled source
validation features, probabilities and labels. All are vectorised and deterministic under ``seed``.

- **IM**, information maximisation: :math:`H(\bar p) - \frac1n \sum_i H(p_i)`, with :math:`\bar p` the mean
  prediction (diverse *and* confident predictions score high; Shi & Sha 2012, used as SHOT's objective).
- **SND**, soft neighbourhood density (Saito et al., ICCV 2021): :math:`\hat p_i = p_i/\lVert p_i\rVert`,
  :math:`S_{ij} = \hat p_i^\top \hat p_j / \tau` (:math:`\tau = 0.05`, :math:`j \ne i`), and the mean entropy of
  the row softmax of :math:`S`.
- **BNM**, batch nuclear-norm maximisation (Cui et al., CVPR 2020): :math:`\lVert P \rVert_* / n`.
- **DEV**, deep embedded validation (You et al., ICML 2019): a domain classifier on features gives importance
  weights :math:`w_i = \frac{n_s}{n_t}\frac{q(t|x_i)}{q(s|x_i)}` on source validation images; with losses
  :math:`\ell_i` and :math:`L_i = w_i \ell_i`, the control variate :math:`\eta = -\widehat{\mathrm{Cov}}(L, w) /
  \widehat{\mathrm{Var}}(w)` gives the risk :math:`\bar L + \eta \bar w - \eta`; the score is its negative.
- **ClassAMI** (Musgrave et al., 2022): adjusted mutual information between k-means clusters (k = K) of the
  target features and the predicted labels.
- **source_val_acc**: accuracy on labelled source validation images, the practitioners' fallback (a baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from torchtransfer.names import VALIDATORS

EPS = 1e-12


@dataclass(frozen=True)
class Outputs:
    """What the validators read of one model, all on the CPU.

    Attributes:
        target_probs: (n, K) softmax outputs on unlabelled target images.
        target_features: (n, d) trunk features of the same images.
        source_probs: (m, K) outputs on labelled source validation images.
        source_features: (m, d) their features.
        source_labels: (m,) their labels.
        source_train_features: (m', d) features of source training images (DEV's domain classifier).
    """

    target_probs: Tensor
    target_features: Tensor
    source_probs: Tensor
    source_features: Tensor
    source_labels: Tensor
    source_train_features: Tensor | None = None


def _entropy(p: Tensor) -> Tensor:
    """Row entropies (in nats) of probability rows ``p`` (..., K)."""
    return -(p * (p + EPS).log()).sum(-1)


def information_maximisation(probs: Tensor) -> float:
    """IM = H(mean p) − mean H(p).

    Example:
        >>> round(information_maximisation(torch.eye(2)), 4)  # confident and diverse: log 2
        0.6931
        >>> information_maximisation(torch.full((4, 2), 0.5))  # uncertain everywhere
        0.0
    """
    return float(_entropy(probs.mean(0)) - _entropy(probs).mean())


def soft_neighbourhood_density(probs: Tensor, temperature: float = 0.05) -> float:
    """SND: mean entropy of the softmax over cosine similarities to the other samples (diagonal excluded)."""
    unit = torch.nn.functional.normalize(probs.double(), dim=1)  # (n, K)
    sims = unit @ unit.T / temperature  # (n, n)
    sims.fill_diagonal_(float("-inf"))
    return float(_entropy(torch.softmax(sims, dim=1)).mean())


def batch_nuclear_norm(probs: Tensor) -> float:
    """BNM = ‖P‖_* / n, the sum of P's singular values over the batch size.

    Example:
        >>> batch_nuclear_norm(torch.eye(3))
        1.0
    """
    return float(torch.linalg.svdvals(probs.double()).sum() / len(probs))


def deep_embedded_validation(source_features: Tensor, source_probs: Tensor, source_labels: Tensor,
                             train_features: Tensor, target_features: Tensor, seed: int = 0) -> float:
    """−DEV risk: the importance-weighted source validation loss with the control variate (You et al., 2019).

    The domain classifier is a logistic regression (sklearn, seeded) from source *training* features (0) vs
    target features (1); its density ratio weights the source *validation* cross-entropy."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([train_features.numpy(), target_features.numpy()]).astype(np.float64)
    d = np.r_[np.zeros(len(train_features)), np.ones(len(target_features))]
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x, d)
    q = clf.predict_proba(source_features.numpy().astype(np.float64))  # (m, 2)
    w = len(train_features) / len(target_features) * q[:, 1] / np.maximum(q[:, 0], EPS)  # (m,)
    picked = source_probs.double().numpy()[np.arange(len(source_labels)), source_labels.numpy()]
    loss = -np.log(np.maximum(picked, EPS))  # (m,) cross-entropy per source validation image
    return -dev_risk(loss, w)


def dev_risk(loss: np.ndarray, weights: np.ndarray) -> float:
    """DEV's control-variate risk :math:`\\bar L + \\eta \\bar w - \\eta`, :math:`L = w\\ell`.

    Example:
        >>> dev_risk(np.array([1.0, 3.0]), np.array([1.0, 1.0]))  # equal weights: the plain mean loss
        2.0
    """
    weighted = weights * loss
    var = np.var(weights, ddof=1) if len(weights) > 1 else 0.0
    eta = 0.0 if var < EPS else -np.cov(weighted, weights, ddof=1)[0, 1] / var
    return float(weighted.mean() + eta * weights.mean() - eta)


def class_ami(target_features: Tensor, probs: Tensor, seed: int = 0) -> float:
    """Adjusted mutual information between k-means clusters (k = K) of the features and the predictions."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    k = probs.shape[1]
    clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(target_features.double().numpy())
    return float(adjusted_mutual_info_score(clusters, probs.argmax(1).numpy()))


def source_val_acc(source_probs: Tensor, source_labels: Tensor) -> float:
    """Accuracy on the labelled source validation images."""
    return float((source_probs.argmax(1) == source_labels).double().mean())


def score_all(out: Outputs, seed: int = 0) -> dict[str, float]:
    """Every validator's score of one model, ``{name: score}`` for ``VALIDATORS`` (DEV only when
    ``source_train_features`` is given)."""
    scores = {
        "im": information_maximisation(out.target_probs),
        "snd": soft_neighbourhood_density(out.target_probs),
        "bnm": batch_nuclear_norm(out.target_probs),
        "class_ami": class_ami(out.target_features, out.target_probs, seed),
        "source_val_acc": source_val_acc(out.source_probs, out.source_labels),
    }
    if out.source_train_features is not None:
        scores["dev"] = deep_embedded_validation(out.source_features, out.source_probs, out.source_labels,
                                                 out.source_train_features, out.target_features, seed)
    return {name: scores[name] for name in VALIDATORS if name in scores}
