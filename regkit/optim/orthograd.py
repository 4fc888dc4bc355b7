r"""⊥Grad: gradient orthogonal to the weights.

Prieto, Barsbey, Mediano & Birdal, "Grokking at the Edge of Numerical Stability",
ICLR 2025, arXiv:2501.04697.

Once a network fits its training set, the cross-entropy gradient aligns with the weights
themselves ("naive loss minimization"): growing :math:`w` only scales the logits, which
lowers the loss without changing predictions and ends in Softmax Collapse. ⊥Grad removes
that direction from each parameter tensor's gradient and restores the gradient's norm,

.. math::

    g_\perp = g - \frac{\langle w, g\rangle}{\langle w, w\rangle + 10^{-30}}\, w, \qquad
    g \leftarrow g_\perp \, \frac{\lVert g\rVert}{\lVert g_\perp\rVert + 10^{-30}},

before the base optimizer steps (as in the authors' ``orthograd.py``).
"""

from __future__ import annotations

from typing import Callable

import torch

from regkit.optim._closure import evaluate_closure

__all__ = ["OrthoGrad", "orthogonalize_"]

TINY = 1e-30


@torch.no_grad()
def orthogonalize_(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Replace ``grad`` in place by its norm-preserving component orthogonal to ``weight``."""
    w, g = weight.reshape(-1), grad.reshape(-1)
    projection = torch.dot(w, g) / (torch.dot(w, w) + TINY)
    orthogonal = g - projection * w
    orthogonal.mul_(torch.linalg.vector_norm(g) / (torch.linalg.vector_norm(orthogonal) + TINY))
    grad.copy_(orthogonal.view_as(grad))
    return grad


class OrthoGrad(torch.optim.Optimizer):
    """Wrap ``base(params, **kwargs)``: every ``step`` first orthogonalizes each gradient.

    Example::

        opt = OrthoGrad(model.parameters(), torch.optim.AdamW, lr=1e-2, weight_decay=0.0)
    """

    def __init__(self, params, base: type[torch.optim.Optimizer] = torch.optim.SGD, **kwargs):
        super().__init__(params, {})
        self.base = base(self.param_groups, **kwargs)
        self.param_groups = self.base.param_groups
        self.state = self.base.state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    orthogonalize_(p, p.grad)
        self.base.step()
        return loss
