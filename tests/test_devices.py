"""Device parity of every family: each public method computed on ``device`` (the CPU always,
CUDA when available; the ``device`` fixture of conftest.py) equals its float64 CPU result,
value and gradients, and returns tensors on that device.

On the CPU these are smoke tests; on a GPU (``make gpu-check``) they check that nothing
silently falls back to, or mixes in, the CPU and that the kernels agree to 1e-9.
"""

from __future__ import annotations

import pytest
import torch

from regkit.divergences import DIVERGENCES, f_divergence, f_dpo_loss
from regkit.heads import FixedHead, ebv_loss
from regkit.losses import (
    ALDRKLLoss,
    BalancedMSELoss,
    ELRLoss,
    adv_comp_sum_loss,
    anyloss,
    balanced_mse_loss,
    balanced_softmax_loss,
    comp_sum_loss,
    dice_loss,
    elr_loss,
    focal_loss,
    gce_loss,
    l2_svm_objective,
    label_smoothing_loss,
    ldr_kl_loss,
    linear_cross_entropy,
    mae_loss,
    pass_at_n_loss,
    sce_loss,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    spherical_z_loss_factored,
    squared_hinge_loss,
    stablemax_cross_entropy,
    taylor_softmax_cross_entropy,
    trades_loss,
)
from regkit.optim import Lion, OrthoGrad
from regkit.ot import (
    monge_gap,
    sinkhorn,
    sinkhorn_divergence,
    sinkhorn_newton_sparse,
    sparsity_constrained_ot,
    sqeuclidean,
)
from regkit.regularizers import PSKD, cutmix, cutout, mixup, soft_cross_entropy
from regkit.rl import group_advantages, grpo_loss, reinforce_loss, token_entropy

B, C = 6, 5
TOL = {"rtol": 1e-9, "atol": 1e-10}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logits(seed: int = 0, shape=(B, C)) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def _labels(seed: int = 1, n: int = B, k: int = C) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=_gen(seed))


def _flat(out) -> torch.Tensor:
    """A tensor output, or the tensors of a tuple/result flattened and concatenated."""
    if isinstance(out, torch.Tensor):
        return out
    return torch.cat([torch.as_tensor(o).reshape(-1) for o in out if isinstance(o, torch.Tensor)])


def _parity(fn, *inputs, device):
    """``fn`` on CPU copies and on ``device`` copies of ``inputs``: equal outputs and input gradients."""
    copies = []
    for target in ("cpu", device):
        copies.append(
            [
                x.detach().clone().to(target).requires_grad_(x.is_floating_point())
                if isinstance(x, torch.Tensor)
                else x
                for x in inputs
            ]
        )
    expected, ours = _flat(fn(*copies[0])), _flat(fn(*copies[1]))
    assert ours.device.type == device.type
    torch.testing.assert_close(ours.detach().cpu(), expected.detach(), **TOL)
    if expected.requires_grad:
        expected.sum().backward()
        ours.sum().backward()
        for reference, value in zip(copies[0], copies[1]):
            if isinstance(reference, torch.Tensor) and reference.grad is not None:
                torch.testing.assert_close(value.grad.cpu(), reference.grad, **TOL)


CASES = {
    # losses
    "elr_loss": lambda: (elr_loss, _logits(), _labels(), torch.softmax(_logits(2), 1)),
    "gce_loss": lambda: (gce_loss, _logits(), _labels()),
    "sce_loss": lambda: (sce_loss, _logits(), _labels()),
    "mae_loss": lambda: (mae_loss, _logits(), _labels()),
    "focal_loss": lambda: (focal_loss, _logits(), _labels()),
    "label_smoothing_loss": lambda: (label_smoothing_loss, _logits(), _labels()),
    "ldr_kl_loss": lambda: (ldr_kl_loss, _logits(), _labels()),
    "stablemax_cross_entropy": lambda: (stablemax_cross_entropy, _logits(), _labels()),
    "pass_at_n_loss": lambda: (lambda z, y: pass_at_n_loss(z, y, 4), _logits(), _labels()),
    **{
        f"comp_sum_loss_tau_{tau}": (
            lambda tau=tau: (lambda z, y: comp_sum_loss(z, y, tau=tau, reduction="none"), _logits(), _labels())
        )
        for tau in (0.0, 0.5, 1.0, 1.5, 2.0)
    },
    "adv_comp_sum_loss": lambda: (
        lambda z, a, y: adv_comp_sum_loss(z, a, y, tau=1.0, nu=2.0, rho=0.5, reduction="none"),
        _logits(),
        _logits(2),
        _labels(),
    ),
    "trades_loss": lambda: (
        lambda z, a, y: trades_loss(z, a, y, beta=6.0, reduction="none"),
        _logits(),
        _logits(2),
        _labels(),
    ),
    "spherical_z_loss": lambda: (lambda z, y: spherical_z_loss(z, y, a=2.0, b=0.5), _logits(), _labels()),
    "spherical_softmax_cross_entropy": lambda: (spherical_softmax_cross_entropy, _logits(), _labels()),
    "taylor_softmax_cross_entropy": lambda: (taylor_softmax_cross_entropy, _logits(), _labels()),
    "balanced_softmax_loss": lambda: (
        lambda z, y: balanced_softmax_loss(z, y, class_counts=torch.arange(1, C + 1)),  # CPU counts: moved
        _logits(),
        _labels(),
    ),
    "balanced_mse_loss": lambda: (
        lambda p, t, v: balanced_mse_loss(p, t, noise_var=v),
        _logits(0, (B, 2)),
        _logits(1, (B, 2)),
        torch.tensor(0.7, dtype=torch.float64),
    ),
    "anyloss_gmean": lambda: (
        lambda z, y: anyloss(z, y, metric="gmean", amplifier=5.0, from_logits=True, reduction="none"),
        _logits(),
        _labels(),
    ),
    "anyloss_binary_fbeta": lambda: (
        lambda p, y: anyloss(p.sigmoid(), y, metric="fbeta", beta=2.0, amplifier=5.0),
        _logits(0, (B,)),
        _labels(1, B, 2),
    ),
    "dice_loss_dsc": lambda: (lambda z, y: dice_loss(z, y, alpha=0.5, reduction="none"), _logits(), _labels()),
    "dice_loss_set_level": lambda: (
        lambda z, y: dice_loss(z, y, square_denominator=True, set_level=True, reduction="none"),
        _logits(0, (B,)),
        _labels(1, B, 2),
    ),
    "squared_hinge_loss_one_vs_rest": lambda: (squared_hinge_loss, _logits(), _labels()),
    "squared_hinge_loss_weston_watkins": lambda: (
        lambda z, y: squared_hinge_loss(z, y, formulation="weston_watkins"),
        _logits(),
        _labels(),
    ),
    "l2_svm_objective": lambda: (
        lambda h, w, y: l2_svm_objective(h @ w.T, y, w, C=0.5),
        _logits(0, (B, 3)),
        _logits(1, (C, 3)),
        _labels(),
    ),
    "spherical_z_loss_factored": lambda: (
        lambda h, w, y: spherical_z_loss_factored(h, w, y, a=2.0, b=0.5),
        _logits(0, (7, 3)),
        _logits(1, (11, 3)),
        _labels(2, 7, 11),
    ),
    "spherical_z_loss_factored_precomputed": lambda: (
        lambda h, w, y: spherical_z_loss_factored(h, w, y, gram=w.T @ w, weight_sum=w.sum(0), reduction="none"),
        _logits(0, (7, 3)),
        _logits(1, (11, 3)),
        _labels(2, 7, 11),
    ),
    "linear_cross_entropy": lambda: (
        lambda h, w, y: linear_cross_entropy(h, w, y, chunk_size=4, token_chunk_size=3, z_loss=1e-3, filter_eps=None),
        _logits(0, (7, 3)),
        _logits(1, (11, 3)),
        _labels(2, 7, 11),
    ),
    # heads
    "ebv_loss": lambda: (
        lambda f, w, y: ebv_loss(f, w, y, temperature=0.1),
        _logits(0, (B, 3)),
        _logits(1, (C, 3)),
        _labels(),
    ),
    "FixedHead": lambda: (lambda f, w: FixedHead(w)(f), _logits(0, (B, 3)), _logits(1, (C, 3))),
    # regularizers
    "soft_cross_entropy": lambda: (soft_cross_entropy, _logits(), torch.softmax(_logits(2), 1)),
    "mixup": lambda: (lambda x, y: mixup(x, y, C, generator=_gen(3)), _logits(0, (B, 2, 4)), _labels()),
    "cutmix": lambda: (lambda x, y: cutmix(x, y, C, generator=_gen(3)), _logits(0, (B, 2, 4, 4)), _labels()),
    "cutout": lambda: (lambda x, y: cutout(x, y, C, generator=_gen(3)), _logits(0, (B, 2, 4, 4)), _labels()),
    # divergences
    **{
        f"f_divergence_{name}": (
            lambda name=name: (lambda p, q: f_divergence(p, q, name, input="logits"), _logits(0), _logits(1))
        )
        for name in DIVERGENCES
    },
    "f_dpo_loss": lambda: (f_dpo_loss, *(-_logits(i, (B,)).abs() for i in range(4))),
    # rl
    "grpo_loss": lambda: (grpo_loss, -_logits(0).abs(), -_logits(1).abs(), _logits(2, (B,)), _logits(3) > -0.5),
    "reinforce_loss": lambda: (reinforce_loss, -_logits(0).abs(), _logits(1, (B,)), _logits(3) > -0.5),
    "token_entropy": lambda: (token_entropy, _logits(0, (2, B, C))),
    "group_advantages": lambda: (group_advantages, _logits(0, (3, 4))),
    # ot
    "sinkhorn": lambda: (
        lambda x, y: sinkhorn(None, None, sqeuclidean(x, y), 0.1, tol=1e-9).regularized_cost,
        _logits(0, (9, 2)),
        _logits(1, (7, 2)),
    ),
    "sinkhorn_newton_sparse": lambda: (
        lambda x, y: sinkhorn_newton_sparse(None, None, sqeuclidean(x, y), 0.1, tol=1e-9).f,
        _logits(0, (9, 2)),
        _logits(1, (9, 2)),
    ),
    "sinkhorn_divergence": lambda: (
        lambda x, y: sinkhorn_divergence(x, y, 0.1, tol=1e-9),
        _logits(0, (9, 2)),
        _logits(1, (7, 2)),
    ),
    "sparsity_constrained_ot": lambda: (
        lambda x, y: sparsity_constrained_ot(None, None, sqeuclidean(x, y), 3, 1.0, solver="torch", tol=1e-12).plan,
        _logits(0, (6, 2)),
        _logits(1, (6, 2)),
    ),
    "monge_gap": lambda: (lambda x, m: monge_gap(x, m, 0.1, tol=1e-9), _logits(0, (8, 2)), _logits(1, (8, 2))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_parity(name, device):
    fn, *inputs = CASES[name]()
    _parity(fn, *inputs, device=device)


def _stateful_run(method: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Three steps of a linear model with a stateful loss; final weights and state."""
    x, y = _logits(0, (12, 3)).to(device), _labels(1, 12).to(device)
    weight = (0.3 * _logits(5, (C, 3))).to(device).requires_grad_()
    if method == "elr":
        criterion = ELRLoss(12, C).double().to(device)
    elif method == "aldr":
        criterion = ALDRKLLoss(12, C).double().to(device)
    else:
        criterion = PSKD(12, C, epochs=3).double().to(device)
    for step in range(3):
        index = torch.arange(12, device=device)[step % 2 :: 2]
        logits = x[index] @ weight.T
        loss = criterion(logits, y[index], index)
        if method == "pskd":
            criterion.end_epoch()
        (grad,) = torch.autograd.grad(loss, weight)
        with torch.no_grad():
            weight -= 0.5 * grad
    state = {"elr": lambda: criterion.targets, "aldr": lambda: criterion.lam, "pskd": lambda: criterion.previous}
    return weight.detach(), state[method]()


def test_balanced_mse_module_parity(device):
    """The learnable noise scale lives on the module's device and gets the same gradient there."""

    def run(target):
        criterion = BalancedMSELoss(0.7).double().to(target)
        pred = _logits(0, (B, 2)).to(target).requires_grad_()
        loss = criterion(pred, _logits(1, (B, 2)).to(target))
        loss.backward()
        return loss.detach(), pred.grad, criterion.noise_sigma.grad

    ours, reference = run(device), run(torch.device("cpu"))
    assert all(t.device.type == device.type for t in ours)
    for value, expected in zip(ours, reference):
        torch.testing.assert_close(value.cpu(), expected, **TOL)


@pytest.mark.parametrize("method", ["elr", "aldr", "pskd"])
def test_stateful_parity(method, device):
    weight, state = _stateful_run(method, device)
    assert weight.device.type == device.type and state.device.type == device.type
    reference = _stateful_run(method, torch.device("cpu"))
    torch.testing.assert_close(weight.cpu(), reference[0], **TOL)
    torch.testing.assert_close(state.cpu(), reference[1], **TOL)


@pytest.mark.parametrize("optimizer", ["lion", "orthograd"])
def test_optimizer_parity(optimizer, device):
    def run(target):
        param = _logits(0, (4, 3)).to(target).requires_grad_()
        opt = Lion([param], lr=0.1, weight_decay=0.01) if optimizer == "lion" else OrthoGrad([param], lr=0.1)
        for step in range(3):
            param.grad = _logits(step + 1, (4, 3)).to(target)
            opt.step()
        return param.detach()

    ours = run(device)
    assert ours.device.type == device.type
    torch.testing.assert_close(ours.cpu(), run("cpu"), **TOL)
