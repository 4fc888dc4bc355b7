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

The projection and the norms are computed in float32 (float64 for float64 tensors), so
float16 weights/gradients neither underflow :math:`10^{-30}` nor overflow the squared norm,
and the degenerate cases are explicit rather than ``0/(0 + 10^{-30})``: a zero weight leaves
the gradient unchanged (nothing to project out), and a zero gradient, or one parallel to the
weight, becomes 0.

Replicated in ``notebooks/stablemax_grokking.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit.optim._closure import evaluate_closure

__all__ = ["OrthoGrad", "orthogonalize_"]

TINY = 1e-30


@torch.no_grad()
def orthogonalize_(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Replace ``grad`` in place by its norm-preserving component orthogonal to ``weight``.

    Raises:
        ValueError: ``weight`` and ``grad`` differ in shape or are not floating.
    """
    if weight.shape != grad.shape or not (weight.is_floating_point() and grad.is_floating_point()):
        raise ValueError(
            f"weight and grad must be floating tensors of one shape, got {tuple(weight.shape)} "
            f"{weight.dtype} and {tuple(grad.shape)} {grad.dtype}"
        )
    dtype = torch.float64 if grad.dtype == torch.float64 else torch.float32
    w, g = weight.reshape(-1).to(dtype), grad.reshape(-1).to(dtype)
    w_norm2 = torch.dot(w, w)
    projection = torch.where(w_norm2 > 0, torch.dot(w, g) / torch.where(w_norm2 > 0, w_norm2, 1.0), 0.0)
    orthogonal = g - projection * w
    orthogonal_norm = torch.linalg.vector_norm(orthogonal)
    scale = torch.where(orthogonal_norm > 0, torch.linalg.vector_norm(g) / orthogonal_norm.clamp(min=TINY), 0.0)
    grad.copy_((orthogonal * scale).view_as(grad))
    return grad


class OrthoGrad(torch.optim.Optimizer):
    """Wrap ``base(params, **kwargs)``: every ``step`` first orthogonalizes each gradient.

    Example::

        opt = OrthoGrad(model.parameters(), torch.optim.AdamW, lr=1e-2, weight_decay=0.0)
    """

    def __init__(self, params, base: type[torch.optim.Optimizer] = torch.optim.SGD, **kwargs):
        if not (isinstance(base, type) and issubclass(base, torch.optim.Optimizer)):
            raise TypeError(f"base must be a torch.optim.Optimizer subclass, got {base!r}")
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
