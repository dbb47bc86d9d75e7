r"""Weight averaging: an exponential moving average of the weights, evaluated in place of the raw iterate.

Polyak–Ruppert averaging in its exponential form, the "mean teacher" of Tarvainen & Valpola (NeurIPS 2017). After
optimiser step :math:`t` with raw weights :math:`\theta_t`:

.. math:: \bar\theta_t = d_t\,\bar\theta_{t-1} + (1 - d_t)\,\theta_t, \qquad
          d_t = \min\!\Big(d, \frac{1 + t}{10 + t}\Big), \qquad \bar\theta_0 = \theta_0

(the warm-up of :math:`d_t` is TensorFlow's ``ExponentialMovingAverage(num_updates=t)``; it lets the average leave
the initial weights quickly). Once :math:`d_t = d` the average spans about :math:`1 / (1 - d)` steps (:math:`d =
0.99`: the last ~100); before that, up to step :math:`t = (10d - 1) / (1 - d)` (890 for 0.99), it spans about
:math:`t / 9` steps, the last ~11 % of training, whatever :math:`d` is. Self-training and adversarial losses make
the raw iterate jump from epoch to epoch; the average smooths that out. Training always moves the raw weights;
validation, model selection and the returned model see the average.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WeightAverage:
    """The EMA :math:`\\bar\\theta` of ``model``'s state (floating-point parameters and buffers; integer buffers,
    such as BatchNorm's step count, are copied).

    Example:
        >>> m = nn.Linear(1, 1, bias=False); _ = m.weight.data.fill_(0.0)
        >>> avg = WeightAverage(m, decay=0.5)
        >>> _ = m.weight.data.fill_(1.0); avg.update(m)  # d_1 = min(0.5, 2/11)
        >>> round(float(avg.state["weight"]), 4)
        0.8182
        >>> raw = avg.load_into(m); round(float(m.weight), 4)
        0.8182
        >>> _ = m.load_state_dict(raw); float(m.weight)  # the raw weights are back
        1.0
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay, self.steps = decay, 0
        self.state: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step: :math:`\\bar\\theta \\leftarrow d_t \\bar\\theta + (1 - d_t) \\theta`."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for key, value in model.state_dict().items():
            avg = self.state[key]
            if avg.is_floating_point():
                avg.lerp_(value.detach(), 1.0 - d)
            else:
                avg.copy_(value)

    def load_into(self, model: nn.Module) -> dict[str, Tensor]:
        """Put the averaged weights into ``model``; return its raw state (``model.load_state_dict`` puts it back)."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        return raw
