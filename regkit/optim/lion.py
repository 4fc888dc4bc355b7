r"""Lion: EvoLved Sign Momentum.

Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
arXiv:2302.06675; Chen, Liang, Liu & Liu, "Lion Secretly Solves Constrained Optimization:
As Lyapunov Predicts", ICLR 2024, arXiv:2310.05898.

For gradient :math:`g_t` and momentum :math:`m`:

.. math::

    c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
    x_t &= x_{t-1} - \eta\,\big(\operatorname{sign}(c_t) + \lambda x_{t-1}\big) \\
    m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

(``sign(0) = 0``). One state tensor per parameter (AdamW keeps two). With decoupled weight
decay :math:`\lambda > 0`, Lion solves :math:`\min f(x)` subject to
:math:`\lVert x\rVert_\infty \le 1/\lambda` (the Lyapunov analysis of the second paper).

Replicated in ``notebooks/lion_constrained.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit._checks import check_number
from regkit.optim._closure import evaluate_closure

__all__ = ["Lion"]


class Lion(torch.optim.Optimizer):
    """Lion with decoupled weight decay, the published update rule.

    Args:
        params: parameters or parameter groups.
        lr: step size :math:`\\eta > 0` (typically 3–10× smaller than AdamW's).
        betas: :math:`(\\beta_1, \\beta_2)` in ``[0, 1)``: interpolation for the update, momentum decay.
        weight_decay: decoupled weight decay :math:`\\lambda \\ge 0`.

    Raises:
        ValueError: naming ``lr``, ``betas`` or ``weight_decay`` when outside its range (NaN and
            inf included).

    Zero-initialized parameters, zero gradients and float16/bfloat16 parameters and
    gradients step without NaN: the update is a sign, and the momentum is kept in the
    parameter's dtype.
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        lr = check_number("lr", lr, low=0, low_open=True)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        betas = tuple(check_number(f"betas[{i}]", b, low=0, high=1, high_open=True) for i, b in enumerate(betas))
        weight_decay = check_number("weight_decay", weight_decay, low=0)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                momentum = state["exp_avg"]
                update = momentum.lerp(p.grad, 1 - beta1).sign_()
                if decay:
                    p.mul_(1 - lr * decay)
                p.add_(update, alpha=-lr)
                momentum.lerp_(p.grad, 1 - beta2)
        return loss
