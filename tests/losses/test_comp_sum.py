"""Comp-sum losses (Mao, Mohri & Zhong 2023) against brute force, cross-entropy, GCE and 1 - p_y,
their limits and monotonicity in tau, and the smooth adversarial comp-sum loss."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regkit.losses import adv_comp_sum_loss, comp_sum_loss, gce_loss, mae_loss, margin_vector_distance

TAUS = [0.0, 0.25, 0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 5.0]


def problem(seed=0, b=16, k=6, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=dtype) * scale, torch.randint(0, k, (b,), generator=g)


def brute_force(logits, labels, tau):
    """Phi^tau(sum_{y' != y} exp(h_y' - h_y)) by the definition, one example at a time, in NumPy float64."""
    out = []
    for row, y in zip(logits.double().numpy(), labels.numpy()):
        u = sum(math.exp(row[k] - row[y]) for k in range(len(row)) if k != y)
        out.append(math.log1p(u) if tau == 1 else ((1 + u) ** (1 - tau) - 1) / (1 - tau))
    return torch.tensor(out, dtype=torch.float64)


def naive(logits, labels, tau):
    """The same definition in torch (for autograd gradients on moderate logits)."""
    diff = logits - logits.gather(1, labels[:, None])
    u = diff.exp().sum(1) - 1
    return torch.log1p(u) if tau == 1 else ((1 + u) ** (1 - tau) - 1) / (1 - tau)


# --- the family and its special cases -----------------------------------------------------------


@pytest.mark.parametrize("tau", TAUS)
def test_matches_the_definition(tau):
    logits, labels = problem(1)
    torch.testing.assert_close(
        comp_sum_loss(logits, labels, tau=tau, reduction="none"), brute_force(logits, labels, tau)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tau_1_is_cross_entropy(dtype):
    logits, labels = problem(2, b=64, k=10, scale=3.0, dtype=dtype)
    x, x_ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours, ref = comp_sum_loss(x, labels, tau=1.0, reduction="none"), F.cross_entropy(x_ref, labels, reduction="none")
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)
    assert float(comp_sum_loss(logits, labels, tau=1)) == pytest.approx(
        float(F.cross_entropy(logits, labels)), abs=1e-6
    )


def test_tau_2_is_one_minus_the_softmax_of_the_label():
    logits, labels = problem(3)
    x = logits.clone().requires_grad_()
    ours = comp_sum_loss(x, labels, tau=2.0, reduction="none")
    p_y = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    torch.testing.assert_close(ours, 1 - p_y)
    torch.testing.assert_close(ours, mae_loss(logits, labels, reduction="none") / 2)  # ‖e_y - p‖₁ = 2(1 - p_y)
    ours.sum().backward()
    x_ref = logits.clone().requires_grad_()
    (1 - x_ref.softmax(1).gather(1, labels[:, None])).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_tau_0_is_the_sum_exponential_loss():
    logits, labels = problem(4, scale=1.5)
    expected = torch.stack(
        [sum(torch.exp(logits[i, k] - logits[i, labels[i]]) for k in range(6) if k != labels[i]) for i in range(16)]
    )
    torch.testing.assert_close(comp_sum_loss(logits, labels, tau=0.0, reduction="none"), expected)


@pytest.mark.parametrize("tau", [1.05, 1.3, 1.5, 1.7, 1.95])
def test_tau_between_1_and_2_is_generalized_cross_entropy(tau):
    logits, labels = problem(5)
    torch.testing.assert_close(
        comp_sum_loss(logits, labels, tau=tau, reduction="none"), gce_loss(logits, labels, q=tau - 1, reduction="none")
    )


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0, 4.0])
def test_gradients(tau):
    logits, labels = problem(6, b=5, k=4)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: comp_sum_loss(z, labels, tau=tau, reduction="none"), (x,))
    comp_sum_loss(x, labels, tau=tau, reduction="sum").backward()
    x_ref = logits.clone().requires_grad_()
    naive(x_ref, labels, tau).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    # the written-out form: p_y^(tau - 1) (p - e_y)
    p = logits.softmax(1)
    p_y = p.gather(1, labels[:, None])
    torch.testing.assert_close(x.grad, p_y ** (tau - 1) * (p - F.one_hot(labels, 4)))


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_second_derivatives(tau):
    """The written-out backward is made of torch ops on the saved input, so it is differentiable again."""
    logits, labels = problem(17, b=4, k=3)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda z: comp_sum_loss(z, labels, tau=tau, reduction="none"), (x,))
    hessian = torch.autograd.functional.hessian(lambda z: comp_sum_loss(z, labels, tau=tau, reduction="sum"), logits)
    reference = torch.autograd.functional.hessian(lambda z: naive(z, labels, tau).sum(), logits)
    torch.testing.assert_close(hessian, reference)


# --- continuity and monotonicity in tau -------------------------------------------------------------


def test_continuous_at_tau_1_with_the_derivative_of_the_integral_form():
    """Phi^tau = int_0^L e^{(1 - tau) s} ds, so d/dtau at tau = 1 is -L^2/2 (L = -log p_y)."""
    logits, labels = problem(7)
    at_one = comp_sum_loss(logits, labels, tau=1.0, reduction="none")
    for delta in [1e-3, 1e-6, 1e-9, 1e-12]:
        for tau in (1 - delta, 1 + delta):
            # |d/dtau| = int_0^L s e^{(1-tau)s} ds <= L^2 for delta L <= log 2
            gap = (comp_sum_loss(logits, labels, tau=tau, reduction="none") - at_one).abs()
            assert (gap <= delta * at_one**2 + 1e-15).all()
    delta = 1e-6
    slope = (comp_sum_loss(logits, labels, tau=1 + delta, reduction="none") - at_one) / delta
    torch.testing.assert_close(slope, -(at_one**2) / 2, rtol=1e-4, atol=1e-6)
    # gradients are continuous too
    grads = []
    for tau in (1 - 1e-9, 1.0, 1 + 1e-9):
        x = logits.clone().requires_grad_()
        comp_sum_loss(x, labels, tau=tau, reduction="sum").backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])
    torch.testing.assert_close(grads[2], grads[1])


def test_non_increasing_in_tau_and_strictly_where_the_loss_is_positive():
    logits, labels = problem(8, b=64, scale=3.0)
    values = torch.stack([comp_sum_loss(logits, labels, tau=tau, reduction="none") for tau in TAUS])
    assert (values[1:] <= values[:-1]).all()
    positive = values[0] > 1e-3
    assert positive.any() and (values[1:, positive] < values[:-1, positive]).all()
    # tau >= 1 lies below cross-entropy, tau <= 1 above it
    ce = F.cross_entropy(logits, labels, reduction="none")
    assert (values[np.array(TAUS) > 1] <= ce).all() and (values[np.array(TAUS) < 1] >= ce).all()


@pytest.mark.parametrize("tau", TAUS)
def test_monotone_in_the_scores_and_non_negative(tau):
    """Non-decreasing in every wrong class's score, non-increasing in the label's score, >= 0."""
    logits, labels = problem(9, scale=1.5)
    x = logits.clone().requires_grad_()
    loss = comp_sum_loss(x, labels, tau=tau, reduction="none")
    assert (loss >= 0).all()
    loss.sum().backward()
    is_label = F.one_hot(labels, 6).bool()
    assert (x.grad[is_label] < 0).all() and (x.grad[~is_label] > 0).all()
    # and the gradient sums to 0 over classes (a common shift of the scores changes nothing)
    torch.testing.assert_close(x.grad.sum(1), torch.zeros(16, dtype=torch.float64))


@pytest.mark.parametrize("tau", [1.25, 1.5, 2.0, 3.0])
def test_bounded_by_one_over_tau_minus_1_above_1(tau):
    logits, labels = problem(10, scale=50.0)
    values = comp_sum_loss(logits, labels, tau=tau, reduction="none")
    assert (values <= 1 / (tau - 1)).all()
    wrong = torch.zeros(3, 4, dtype=torch.float64)
    wrong[:, 1] = 1e4  # the label (0) loses by 1e4: the supremum is attained in floating point
    expected = torch.tensor(1 / (tau - 1), dtype=torch.float64)
    torch.testing.assert_close(comp_sum_loss(wrong, torch.zeros(3, dtype=torch.long), tau=tau), expected)


# --- numerics: huge logits, masked classes, half precision ------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [1.0, 1.5, 2.0, 3.0])
def test_finite_values_and_gradients_at_huge_logits_for_tau_at_least_1(tau, dtype):
    g = torch.Generator().manual_seed(11)
    for scale in (1e4, -1e4, 1e30):
        signs = torch.randint(0, 2, (32, 5), generator=g).to(dtype) * 2 - 1
        x = (signs * scale).requires_grad_()
        labels = torch.randint(0, 5, (32,), generator=g)
        loss = comp_sum_loss(x, labels, tau=tau, reduction="none")
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
        assert x.grad.abs().max() <= 1  # every entry of p_y^(tau-1) (p - e_y) has |.| <= 1
    # the exact values at +-1e4: the label leads (loss 0) or trails by 2e4
    logits = torch.tensor([[1e4, -1e4, -1e4], [-1e4, 1e4, -1e4]], dtype=dtype)
    labels = torch.tensor([0, 0])
    expected = 2e4 + math.log1p(math.exp(-2e4)) if tau == 1 else (1 - 0.0) / (tau - 1)  # p_y = e^{-2e4} = 0
    torch.testing.assert_close(
        comp_sum_loss(logits, labels, tau=tau, reduction="none"), torch.tensor([0.0, expected], dtype=dtype)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [0.0, 0.5, 0.9])
def test_below_tau_1_overflow_is_inf_never_nan(tau, dtype):
    logits = torch.tensor([[1e4, -1e4, -1e4, 0.0], [-1e4, 1e4, -1e4, 0.0], [0.0, 1.0, -2.0, 3.0]], dtype=dtype)
    x = logits.clone().requires_grad_()
    labels = torch.tensor([0, 0, 1])
    loss = comp_sum_loss(x, labels, tau=tau, reduction="none")
    loss.sum().backward()
    assert loss[0] == 0 and loss[1] == math.inf and torch.isfinite(loss[2])
    assert not x.grad.isnan().any()
    assert torch.isfinite(x.grad[[0, 2]]).all()  # where the label leads, or the scores are moderate
    assert x.grad[1, 1] == math.inf and x.grad[1, 0] == -math.inf
    # (1 + u)^{-tau} e^{h_2 - h_0} = (1 + u)^{-tau}: 1 for the sum-exponential loss, 0 (underflow) above
    assert x.grad[1, 2] == (1.0 if tau == 0 else 0.0)


def test_zero_upstream_gradient_through_an_overflowed_loss_is_zero():
    logits = torch.tensor([[-1e4, 1e4, 0.0], [0.0, 1.0, 2.0]], requires_grad=True)
    losses = comp_sum_loss(logits, torch.tensor([0, 0]), tau=0.0, reduction="none")
    assert losses[0] == math.inf
    torch.autograd.backward(losses, grad_tensors=torch.tensor([0.0, 1.0]))
    assert (logits.grad[0] == 0).all() and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_masked_class_is_a_removed_class(tau):
    logits, labels = problem(12, b=8, k=6)
    logits[:, -2:] = -math.inf
    labels = labels % 4
    x = logits.clone().requires_grad_()
    loss = comp_sum_loss(x, labels, tau=tau, reduction="sum")
    loss.backward()
    kept = logits[:, :-2].clone().requires_grad_()
    reduced = comp_sum_loss(kept, labels, tau=tau, reduction="sum")
    reduced.backward()
    torch.testing.assert_close(loss, reduced)
    torch.testing.assert_close(x.grad[:, :-2], kept.grad)
    assert (x.grad[:, -2:] == 0).all()


def test_a_single_class_and_a_masked_label():
    one = torch.zeros(3, 1, requires_grad=True)
    loss = comp_sum_loss(one, torch.zeros(3, dtype=torch.long), tau=0.5, reduction="sum")
    loss.backward()
    assert loss == 0 and (one.grad == 0).all()
    logits = torch.tensor([[-math.inf, 0.0, 1.0]], requires_grad=True)  # the label's own class is masked: p_y = 0
    for tau, expected in [(0.5, math.inf), (1.0, math.inf), (1.5, 2.0), (3.0, 0.5)]:
        logits.grad = None
        loss = comp_sum_loss(logits, torch.tensor([0]), tau=tau)
        loss.backward()
        assert loss.item() == expected and (logits.grad == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_half_precision_is_computed_in_float32(tau, dtype):
    logits, labels = problem(13, b=8, k=5, scale=2.0, dtype=torch.float32)
    half = logits.to(dtype).requires_grad_()
    value = comp_sum_loss(half, labels, tau=tau, reduction="none")
    value.sum().backward()
    assert value.dtype == dtype and half.grad.dtype == dtype and torch.isfinite(half.grad).all()
    expected = comp_sum_loss(half.detach().double(), labels, tau=tau, reduction="none")
    torch.testing.assert_close(value.double(), expected, rtol=1e-2, atol=1e-2)


# --- the public boundary ------------------------------------------------------------------------


def test_reductions():
    logits, labels = problem(14)
    none = comp_sum_loss(logits, labels, tau=0.7, reduction="none")
    assert none.shape == (16,)
    torch.testing.assert_close(comp_sum_loss(logits, labels, tau=0.7), none.mean())
    torch.testing.assert_close(comp_sum_loss(logits, labels, tau=0.7, reduction="sum"), none.sum())
    with pytest.raises(ValueError, match="reduction"):
        comp_sum_loss(logits, labels, tau=0.7, reduction="batchmean")


@pytest.mark.parametrize("tau", [-1.0, -1e-12, math.nan, math.inf, -math.inf])
def test_bad_tau_is_rejected(tau):
    logits, labels = problem(15, b=2)
    with pytest.raises(ValueError, match="tau"):
        comp_sum_loss(logits, labels, tau=tau)


@pytest.mark.parametrize("tau", ["1", True, None])
def test_tau_of_the_wrong_type_is_a_type_error(tau):
    logits, labels = problem(15, b=2)
    with pytest.raises(TypeError, match="tau"):
        comp_sum_loss(logits, labels, tau=tau)


def test_tau_is_keyword_only_and_required():
    logits, labels = problem(15, b=2)
    with pytest.raises(TypeError):
        comp_sum_loss(logits, labels, 1.0)
    with pytest.raises(TypeError):
        comp_sum_loss(logits, labels)


def test_bad_logits_and_labels_are_rejected():
    logits, labels = problem(16, b=3, k=4)
    with pytest.raises(ValueError, match="labels"):
        comp_sum_loss(logits, torch.tensor([0, 1, 4]), tau=1.0)
    with pytest.raises(ValueError, match="labels"):
        comp_sum_loss(logits, torch.tensor([0, 1]), tau=1.0)
    with pytest.raises(ValueError, match="logits"):
        comp_sum_loss(torch.full((3, 4), math.nan), labels, tau=1.0)
    with pytest.raises(ValueError, match="logits"):
        comp_sum_loss(logits[0], labels[:1], tau=1.0)


# --- the smooth adversarial comp-sum loss -------------------------------------------------------------


def pair(seed=20, b=32, k=5, shift=1.0):
    logits, labels = problem(seed, b=b, k=k)
    g = torch.Generator().manual_seed(seed + 1)
    return logits, logits + shift * torch.randn(b, k, generator=g, dtype=torch.float64), labels


def test_margin_vector_distance_against_its_definition():
    logits, adv, labels = pair()
    margins = lambda z: z - z.gather(1, labels[:, None])  # Δ_h(x, y)
    expected = (margins(adv) - margins(logits)).norm(dim=1)
    torch.testing.assert_close(margin_vector_distance(logits, adv, labels), expected)
    torch.testing.assert_close(
        margin_vector_distance(logits, adv, labels, distance="logits"), (adv - logits).norm(dim=1)
    )
    # a common shift of h(x') is no margin change; the margin distance is at most (1 + sqrt K) the logit distance
    shifted = margin_vector_distance(logits, adv + 7.0, labels)
    torch.testing.assert_close(shifted, expected)
    assert (expected <= (1 + math.sqrt(5)) * (adv - logits).norm(dim=1)).all()
    torch.testing.assert_close(margin_vector_distance(logits, adv, labels, reduction="sum"), expected.sum())


@pytest.mark.parametrize("tau", [0.0, 1.0, 1.5])
@pytest.mark.parametrize("rho", [0.5, 1.0, 2.0])
def test_adv_loss_at_the_clean_point_is_the_comp_sum_loss(tau, rho):
    logits, _, labels = pair()
    torch.testing.assert_close(
        adv_comp_sum_loss(logits, logits.clone(), labels, tau=tau, nu=6.0, rho=rho),
        comp_sum_loss(logits / rho, labels, tau=tau),
    )


@pytest.mark.parametrize("distance", ["margins", "logits"])
def test_adv_loss_is_comp_sum_plus_nu_times_the_distance(distance):
    logits, adv, labels = pair()
    expected = comp_sum_loss(logits / 2, labels, tau=1.5, reduction="none") + 3.0 * margin_vector_distance(
        logits, adv, labels, distance=distance
    )
    torch.testing.assert_close(
        adv_comp_sum_loss(logits, adv, labels, tau=1.5, nu=3.0, rho=2.0, distance=distance, reduction="none"), expected
    )


@pytest.mark.parametrize("tau", [1.0, 1.5, 2.0, 4.0])
@pytest.mark.parametrize("rho", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("shift", [0.1, 1.0, 10.0])
def test_upper_bounds_the_comp_sum_loss_at_the_perturbed_point(tau, rho, shift):
    """For tau >= 1 the comp-sum loss is (1/rho)-Lipschitz in the margin vector: with nu >= 1/rho the
    smooth loss bounds the adversarial one from above, whatever h(x') is."""
    logits, adv, labels = pair(21, b=256, shift=shift)
    smooth = adv_comp_sum_loss(logits, adv, labels, tau=tau, nu=1 / rho, rho=rho, reduction="none")
    assert (smooth >= comp_sum_loss(adv / rho, labels, tau=tau, reduction="none") - 1e-12).all()


def test_below_tau_1_no_finite_nu_bounds_the_perturbed_loss():
    """The sum-exponential loss grows like e^{margin}: the Lipschitz argument has no constant there."""
    logits = torch.zeros(1, 2, dtype=torch.float64)
    adv = torch.tensor([[0.0, 20.0]], dtype=torch.float64)
    labels = torch.tensor([0])
    assert adv_comp_sum_loss(logits, adv, labels, tau=0.0, nu=1e6) < comp_sum_loss(adv, labels, tau=0.0)


def test_adv_loss_gradients_flow_through_both_logits():
    logits, adv, labels = pair(22, b=4, k=3)
    inputs = (logits.clone().requires_grad_(), adv.clone().requires_grad_())
    for distance in ("margins", "logits"):
        fn = lambda z, a, d=distance: adv_comp_sum_loss(z, a, labels, tau=1.5, nu=2.0, rho=0.7, distance=d)
        assert torch.autograd.gradcheck(fn, inputs)


def test_adv_loss_masked_classes_and_half_precision():
    logits, adv, labels = pair(23, b=6, k=6)
    logits[:, -1], adv[:, -1] = -math.inf, -math.inf
    labels = labels % 5
    x = adv.clone().requires_grad_()
    loss = adv_comp_sum_loss(logits, x, labels, tau=1.0, nu=1.0)
    loss.backward()
    torch.testing.assert_close(loss, adv_comp_sum_loss(logits[:, :-1], adv[:, :-1], labels, tau=1.0, nu=1.0))
    assert (x.grad[:, -1] == 0).all() and torch.isfinite(x.grad).all()
    half = adv_comp_sum_loss(logits.half(), adv.half(), labels, tau=1.0, nu=1.0, reduction="none")
    assert half.dtype == torch.float16
    torch.testing.assert_close(
        half.double(),
        adv_comp_sum_loss(logits.half().double(), adv.half().double(), labels, tau=1.0, nu=1.0, reduction="none"),
        rtol=2e-3,
        atol=2e-3,
    )


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("nu", {"nu": -1.0}),
        ("nu", {"nu": math.nan}),
        ("nu", {"nu": math.inf}),
        ("rho", {"rho": 0.0}),
        ("rho", {"rho": -1.0}),
        ("rho", {"rho": math.inf}),
        ("tau", {"tau": -0.5}),
        ("distance", {"distance": "l1"}),
        ("reduction", {"reduction": "avg"}),
    ],
)
def test_adv_loss_bad_arguments(name, kwargs):
    logits, adv, labels = pair(24, b=2)
    call = {"tau": 1.0, "nu": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        adv_comp_sum_loss(logits, adv, labels, **call)


def test_adv_loss_bad_shapes_and_masks():
    logits, adv, labels = pair(25, b=3, k=4)
    with pytest.raises(ValueError, match="adv_logits"):
        adv_comp_sum_loss(logits, adv[:, :3], labels, tau=1.0, nu=1.0)
    masked = adv.clone()
    masked[0, 1] = -math.inf
    with pytest.raises(ValueError, match="adv_logits"):
        margin_vector_distance(logits, masked, labels)
    with pytest.raises(ValueError, match="adv_logits"):
        margin_vector_distance(logits, torch.full_like(adv, math.nan), labels)
    with pytest.raises(ValueError, match="distance"):
        margin_vector_distance(logits, adv, labels, distance="linf")
