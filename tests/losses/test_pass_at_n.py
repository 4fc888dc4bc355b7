"""The pass@N (direct coverage optimization) loss against its closed form and gradient."""

import pytest
import torch
import torch.nn.functional as F

from regkit.losses import coverage_gradient_factor, pass_at_n_loss


def independent_dco(logits, labels, n):
    p = logits.double().softmax(1)[torch.arange(len(labels)), labels]
    return -torch.log(1 - (1 - p) ** n)


@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_dco_matches_the_closed_form_and_n1_is_cross_entropy(n):
    g = torch.Generator().manual_seed(n)
    logits, labels = torch.randn(32, 10, generator=g, dtype=torch.float64) * 3, torch.randint(0, 10, (32,), generator=g)
    ours = pass_at_n_loss(logits, labels, n, reduction="none")
    torch.testing.assert_close(ours, independent_dco(logits, labels, n))
    if n == 1:
        torch.testing.assert_close(ours, F.cross_entropy(logits, labels, reduction="none"))


@pytest.mark.parametrize("n", [2, 16])
def test_dco_gradient_is_the_cross_entropy_gradient_times_f(n):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 5, generator=g, dtype=torch.float64).requires_grad_()
    labels = torch.randint(0, 5, (8,), generator=g)
    (dco,) = torch.autograd.grad(pass_at_n_loss(logits, labels, n, reduction="sum"), logits)
    (ce,) = torch.autograd.grad(F.cross_entropy(logits, labels, reduction="sum"), logits)
    p = logits.detach().softmax(1)[torch.arange(8), labels]
    factor = n * p * (1 - p) ** (n - 1) / (1 - (1 - p) ** n)
    torch.testing.assert_close(dco, factor[:, None] * ce)
    torch.testing.assert_close(coverage_gradient_factor(p, n), factor)


def test_dco_is_finite_for_confident_predictions():
    logits = torch.tensor([[200.0, 0.0], [-200.0, 0.0]], requires_grad=True)
    loss = pass_at_n_loss(logits, torch.tensor([0, 0]), 16)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    "fn",
    [
        lambda: pass_at_n_loss(torch.randn(3, 4), torch.tensor([0, 1, 4]), 4),
        lambda: pass_at_n_loss(torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0]), 4),
        lambda: pass_at_n_loss(torch.randn(3, 4), torch.tensor([0, 1]), 4),
        lambda: pass_at_n_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), 0),
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError):
        fn()
