"""StableMax, ⊥Grad and the DCO (pass@N) loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regkit.losses import coverage_gradient_factor, pass_at_n_loss, stablemax, stablemax_cross_entropy
from regkit.optim import OrthoGrad, orthogonalize_

logit_rows = arrays("float64", st.integers(2, 12), elements=st.floats(-1e6, 1e6))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(logit_rows)
def test_stablemax_is_a_distribution(row):
    p = stablemax(torch.from_numpy(row))
    assert torch.all(p > 0)
    assert abs(float(p.sum()) - 1) < 1e-12


# logits within ±1e3: beyond that a probability can round to exactly 1 in float64 and stop moving
moderate_rows = arrays("float64", st.integers(2, 12), elements=st.floats(-1e3, 1e3))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(moderate_rows, st.data())
def test_stablemax_is_monotone_in_each_logit(row, data):
    z = torch.from_numpy(row)
    i = data.draw(st.integers(0, len(row) - 1))
    bumped = z.clone()
    bumped[i] += data.draw(st.floats(1e-3, 10.0))
    assert stablemax(bumped)[i] > stablemax(z)[i]
    others = torch.arange(len(row)) != i
    assert torch.all(stablemax(bumped)[others] <= stablemax(z)[others])


def test_stablemax_matches_the_formula():
    z = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 2.0]], dtype=torch.float64)
    s = torch.tensor([1 / 4, 1 / 1.5, 1.0, 1.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(stablemax(z), s[None] / s.sum())
    loss = stablemax_cross_entropy(z, torch.tensor([3]))
    torch.testing.assert_close(loss, -torch.log(s[3] / s.sum()))


def test_stablemax_loss_does_not_collapse_where_softmax_does():
    logits = torch.tensor([[60.0, 0.0, -5.0]])
    labels = torch.tensor([0])
    softmax_loss = F.cross_entropy(logits, labels)
    assert float(softmax_loss) == 0.0  # float32 absorption: Softmax Collapse
    assert float(stablemax_cross_entropy(logits, labels)) > 0


def test_orthogonalized_gradient_is_orthogonal_and_keeps_its_norm():
    g = torch.Generator().manual_seed(0)
    w, grad = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    new = orthogonalize_(w, grad.clone())
    assert abs(float((new * w).sum())) < 1e-12
    assert math.isclose(float(new.norm()), float(grad.norm()), rel_tol=1e-12)
    # removing the component along w: new ∝ grad - (<w,g>/<w,w>) w
    expected = grad - (grad * w).sum() / (w * w).sum() * w
    torch.testing.assert_close(new / new.norm(), expected / expected.norm())


def test_orthograd_sgd_update_is_orthogonal_to_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4, bias=False).double()
    before = model.weight.detach().clone()
    opt = OrthoGrad(model.parameters(), torch.optim.SGD, lr=0.1)
    model(torch.randn(9, 6, dtype=torch.float64)).pow(2).sum().backward()
    raw = model.weight.grad.clone()
    opt.step()
    update = model.weight.detach() - before
    assert abs(float((update * before).sum())) < 1e-12
    assert math.isclose(float(update.norm()), 0.1 * float(raw.norm()), rel_tol=1e-10)


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
        lambda: stablemax_cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, -1])),
        lambda: stablemax_cross_entropy(torch.randn(3), torch.tensor([0, 1, 1])),
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError):
        fn()
