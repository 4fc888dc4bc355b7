"""Spherical-family losses: the Z-loss (closed forms, shift and scale invariance, the spherical-family
property, constant rows), its factored O(d²) evaluation from the output moments, the log-spherical and
log-Taylor softmax (distributions, closed forms, limits), gradients at large logits and the rejected inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regkit.losses import (
    log_spherical_softmax,
    log_taylor_softmax,
    spherical_softmax,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    spherical_z_loss_factored,
    standardize_logits,
    taylor_softmax,
    taylor_softmax_cross_entropy,
)

LOSSES = {
    "z": spherical_z_loss,
    "spherical": spherical_softmax_cross_entropy,
    "taylor": taylor_softmax_cross_entropy,
}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def problem(seed, b=5, k=7, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=dtype) * scale, torch.randint(0, k, (b,), generator=g)


def softplus_over_a(x, a):
    return math.log1p(math.exp(a * x)) / a


def reference_z_loss(logits, labels, a, b):
    """The paper's formula, written independently: population std, (1/a) softplus(a (b - z_c))."""
    mu = logits.mean(1, keepdim=True)
    sigma = logits.std(1, correction=0, keepdim=True)
    z = (logits - mu) / sigma
    z_c = z.gather(1, labels[:, None]).squeeze(1)
    return F.softplus(b - z_c, beta=a, threshold=1e6)


# --------------------------------------------------------------------------------------- Z-loss


@pytest.mark.parametrize("a, b", [(1.0, 0.0), (2.0, 0.5), (0.3, -1.0)])
def test_z_loss_two_classes_closed_form(a, b):
    # with two classes the standardized scores are always +1 and -1
    logits = torch.tensor([[3.0, -0.5], [-2.0, 7.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0])
    expected = torch.tensor([softplus_over_a(b - 1, a), softplus_over_a(b + 1, a)], dtype=torch.float64)
    torch.testing.assert_close(spherical_z_loss(logits, labels, a=a, b=b, reduction="none"), expected)


def test_z_loss_hand_computed_three_and_four_classes():
    # [2, 0, -2]: mu = 0, sigma = sqrt(8/3), z = [sqrt(3/2), 0, -sqrt(3/2)]
    z = standardize_logits(torch.tensor([[2.0, 0.0, -2.0]], dtype=torch.float64))
    torch.testing.assert_close(z, torch.tensor([[math.sqrt(1.5), 0.0, -math.sqrt(1.5)]], dtype=torch.float64))
    # [1, 0, 0, 0]: the extreme z_c = sqrt(D - 1) = sqrt(3), the others -1/sqrt(3)
    one_hot = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[math.sqrt(3), *[-1 / math.sqrt(3)] * 3]], dtype=torch.float64)
    torch.testing.assert_close(standardize_logits(one_hot), expected)
    loss = spherical_z_loss(one_hot, torch.tensor([0]), a=1.0, b=0.0)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-math.sqrt(3))), rel=1e-14)


@SETTINGS
@given(seed=st.integers(0, 2**16), a=st.floats(0.05, 20), b=st.floats(-3, 3))
def test_z_loss_matches_the_paper_formula_with_gradients(seed, a, b):
    logits, labels = problem(seed)
    ours_x, ref_x = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = spherical_z_loss(ours_x, labels, a=a, b=b, reduction="none")
    reference = reference_z_loss(ref_x, labels, a, b)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-13)
    ours.sum().backward()
    reference.sum().backward()
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-10, atol=1e-12)


rows = arrays("float64", st.integers(2, 12), elements=st.floats(-100, 100), unique=True)


@SETTINGS
@given(row=rows, shift=st.floats(-1e3, 1e3), log_scale=st.floats(-3, 3), data=st.data())
def test_z_loss_is_shift_and_scale_invariant(row, shift, log_scale, data):
    logits = torch.from_numpy(row)[None]
    label = torch.tensor([data.draw(st.integers(0, len(row) - 1))])
    scale = 10.0**log_scale
    moved = logits * scale + shift
    torch.testing.assert_close(spherical_z_loss(moved, label), spherical_z_loss(logits, label), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(standardize_logits(moved), standardize_logits(logits), rtol=1e-9, atol=1e-9)
    # the gradient of o -> L(scale * o + shift) is scale * grad L(scale * o + shift), i.e. grad L(o)
    x, y = logits.clone().requires_grad_(), moved.clone().requires_grad_()
    spherical_z_loss(x, label).backward()
    spherical_z_loss(y, label).backward()
    torch.testing.assert_close(y.grad * scale, x.grad, rtol=1e-7, atol=1e-12)


def test_z_loss_negative_scale_flips_the_scores():
    logits, labels = problem(3)
    z_c = standardize_logits(logits).gather(1, labels[:, None]).squeeze(1)
    flipped = spherical_z_loss(-2.5 * logits, labels, a=1.5, b=0.2, reduction="none")
    torch.testing.assert_close(flipped, F.softplus(0.2 + z_c, beta=1.5, threshold=1e6))


@SETTINGS
@given(seed=st.integers(0, 2**16), k=st.integers(2, 30))
def test_standardized_scores_are_centered_unit_variance_and_bounded(seed, k):
    logits, _ = problem(seed, k=k, scale=5.0)
    z = standardize_logits(logits)
    torch.testing.assert_close(z.mean(1), torch.zeros(len(z), dtype=z.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(z.square().mean(1), torch.ones(len(z), dtype=z.dtype))
    assert (z.abs() <= math.sqrt(k - 1) * (1 + 1e-12)).all()


def test_z_loss_tends_to_the_hinge_as_a_grows():
    logits, labels = problem(4)
    z_c = standardize_logits(logits).gather(1, labels[:, None]).squeeze(1)
    for b in (-1.0, 0.0, 0.7, 2.0):
        hinge = (b - z_c).clamp(min=0)
        value = spherical_z_loss(logits, labels, a=1e6, b=b, reduction="none")
        torch.testing.assert_close(value, hinge, atol=1e-6, rtol=0)  # within log(2)/a of the hinge


def householder_keep_sum_and_squares(logits, labels, seed):
    """Reflect the non-target logits of each row across a hyperplane whose normal is orthogonal to
    the all-ones vector: o_c, sum(o) and sum(o^2) are kept, the vector changes."""
    g = torch.Generator().manual_seed(seed)
    out = logits.clone()
    for i, c in enumerate(labels.tolist()):
        others = [k for k in range(logits.shape[1]) if k != c]
        v = torch.randn(len(others), generator=g, dtype=logits.dtype)
        v -= v.mean()
        x = logits[i, others]
        out[i, others] = x - 2 * v * (v @ x) / (v @ v)
    return out


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_spherical_family_property(name):
    # a spherical loss depends on o only through o_c, sum(o) and sum(o^2)
    logits, labels = problem(5, k=9)
    moved = householder_keep_sum_and_squares(logits, labels, seed=6)
    assert not torch.allclose(moved, logits)
    torch.testing.assert_close(moved.sum(1), logits.sum(1))
    torch.testing.assert_close(moved.square().sum(1), logits.square().sum(1))
    fn = LOSSES[name]
    torch.testing.assert_close(fn(moved, labels, reduction="none"), fn(logits, labels, reduction="none"))
    # ...which the log-softmax is not
    assert not torch.allclose(F.cross_entropy(moved, labels, reduction="none"), F.cross_entropy(logits, labels))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("a", [1e-300, 1e-30, 1e30, 1e300])
def test_z_loss_extreme_slopes_are_never_nan(a, dtype):
    logits, labels = problem(10, dtype=dtype)
    logits.requires_grad_()
    loss = spherical_z_loss(logits, labels, a=a, b=0.3, reduction="none")
    loss.sum().backward()
    assert loss.dtype == dtype and not loss.isnan().any() and torch.isfinite(logits.grad).all()
    z_c = standardize_logits(logits.detach().double()).gather(1, labels[:, None]).squeeze(1)
    if a >= 1e30:  # the hinge
        torch.testing.assert_close(loss.double(), (0.3 - z_c).clamp(min=0), rtol=1e-2, atol=1e-2)
    else:  # log(2)/a + (b - z_c)/2 + O(a), rounded to the dtype (inf beyond its range)
        expected = (math.log(2) / a + (0.3 - z_c) / 2).to(dtype)
        assert torch.equal(loss.isinf(), expected.isinf())
        torch.testing.assert_close(loss[~loss.isinf()].double(), expected[~loss.isinf()].double(), rtol=1e-2, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.0, 1.0, -3.7, 1e4, -1e30])
def test_z_loss_constant_rows_have_z_zero_and_a_zero_gradient(value, dtype):
    logits = torch.full((3, 5), value, dtype=dtype)
    logits[2] = torch.arange(5, dtype=dtype)  # a normal row beside the constant ones
    logits.requires_grad_()
    labels = torch.tensor([0, 3, 4])
    loss = spherical_z_loss(logits, labels, a=2.0, b=0.5, reduction="none")
    loss.sum().backward()
    expected = math.log1p(math.exp(2.0 * 0.5)) / 2.0
    assert loss[0].item() == pytest.approx(expected, rel=1e-6) and loss[1].item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    assert (logits.grad[:2] == 0).all() and (logits.grad[2] != 0).any()
    assert (standardize_logits(logits.detach())[:2] == 0).all()


def test_z_loss_rows_one_ulp_apart_are_not_constant():
    # the smallest spread is a spread: two classes give z = +1 and -1 exactly as for any other pair
    x = torch.tensor([1.0, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item()])
    torch.testing.assert_close(standardize_logits(x[None]), torch.tensor([[-1.0, 1.0]]))


def test_z_loss_masked_class_is_a_removed_class():
    logits = torch.tensor([[0.3, -1.2, 2.0, -math.inf]], dtype=torch.float64, requires_grad=True)
    z = standardize_logits(logits.detach())
    torch.testing.assert_close(z[:, :3], standardize_logits(logits.detach()[:, :3]))
    assert z[0, 3] == -math.inf
    loss = spherical_z_loss(logits, torch.tensor([1]))
    loss.backward()
    torch.testing.assert_close(loss, spherical_z_loss(logits.detach()[:, :3], torch.tensor([1])))
    assert logits.grad[0, 3] == 0
    # one unmasked class: a constant row
    single = torch.tensor([[-math.inf, 4.0, -math.inf]])
    assert spherical_z_loss(single, torch.tensor([1])).item() == pytest.approx(math.log(2))


def test_z_loss_label_on_a_masked_class_is_inf_not_nan():
    logits = torch.tensor([[0.3, -1.2, -math.inf]], requires_grad=True)
    loss = spherical_z_loss(logits, torch.tensor([2]))
    loss.backward()
    assert loss.item() == math.inf and torch.isfinite(logits.grad).all()


# ------------------------------------------------------------------- factored Z-loss (O(d²) per example)


def linear_problem(seed, b=6, d=4, k=9, offset=0.0, dtype=torch.float64):
    """hidden (b, d), weight (k, d) (rows shifted by a common ``offset`` vector) and labels."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, d, generator=g, dtype=dtype)
    weight = torch.randn(k, d, generator=g, dtype=dtype) + offset * torch.randn(d, generator=g, dtype=dtype)
    return hidden, weight, torch.randint(0, k, (b,), generator=g)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 40),
    d=st.integers(1, 6),
    a=st.floats(0.05, 20),
    b=st.floats(-3, 3),
    precomputed=st.booleans(),
)
def test_factored_z_loss_equals_the_dense_one_with_gradients(seed, k, d, a, b, precomputed):
    hidden, weight, labels = linear_problem(seed, d=d, k=k)
    h_dense, w_dense = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    h_ours, w_ours = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    dense = spherical_z_loss(h_dense @ w_dense.T, labels, a=a, b=b, reduction="none")
    # differentiable moments of weight: the full gradient w.r.t. weight as well
    moments = {"gram": w_ours.T @ w_ours, "weight_sum": w_ours.sum(0)} if precomputed else {}
    ours = spherical_z_loss_factored(h_ours, w_ours, labels, a=a, b=b, reduction="none", **moments)
    torch.testing.assert_close(ours, dense, rtol=1e-10, atol=1e-12)
    dense.sum().backward()
    ours.sum().backward()
    torch.testing.assert_close(h_ours.grad, h_dense.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(w_ours.grad, w_dense.grad, rtol=1e-8, atol=1e-10)


def test_factored_z_loss_with_detached_moments_reads_only_the_target_rows():
    hidden, weight, labels = linear_problem(3, b=5, k=12)
    gram, weight_sum = weight.T @ weight, weight.sum(0)
    expected = spherical_z_loss(hidden @ weight.T, labels, a=1.5, b=0.5, reduction="none")
    # rows that are not targets are never read: NaN there changes nothing
    poisoned = weight.clone()
    others = torch.ones(12, dtype=torch.bool)
    others[labels] = False
    poisoned[others] = math.nan
    h = hidden.clone().requires_grad_()
    ours = spherical_z_loss_factored(h, poisoned, labels, gram=gram, weight_sum=weight_sum, a=1.5, b=0.5,
                                     reduction="none")  # fmt: skip
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    h_dense = hidden.clone().requires_grad_()
    spherical_z_loss(h_dense @ weight.T, labels, a=1.5, b=0.5, reduction="none").sum().backward()
    torch.testing.assert_close(h.grad, h_dense.grad, rtol=1e-8, atol=1e-10)


def test_factored_z_loss_keeps_its_precision_when_the_mean_dominates():
    # rows sharing a common component 1e6 times their spread: mu^2 / sigma^2 ~ 1e12
    hidden, weight, labels = linear_problem(5, k=50, offset=1e6)
    expected = spherical_z_loss(hidden @ weight.T, labels, reduction="none")
    torch.testing.assert_close(spherical_z_loss_factored(hidden, weight, labels, reduction="none"), expected,
                               rtol=1e-7, atol=1e-9)  # fmt: skip
    # the uncentred Gram matrix (as the paper's update keeps it) loses ~12 digits, as documented
    uncentred = spherical_z_loss_factored(hidden, weight, labels, gram=weight.T @ weight, reduction="none")
    assert torch.isfinite(uncentred).all()


def test_factored_z_loss_constant_rows():
    hidden, weight, labels = linear_problem(8, b=4)
    hidden[1] = 0.0  # every output 0: a constant row
    h = hidden.clone().requires_grad_()
    loss = spherical_z_loss_factored(h, weight, labels, a=2.0, b=0.5, reduction="none")
    loss.sum().backward()
    assert loss[1].item() == pytest.approx(math.log1p(math.exp(1.0)) / 2.0, rel=1e-12)
    assert (h.grad[1] == 0).all() and torch.isfinite(h.grad).all()
    # one class: sigma = 0 for every row
    single = spherical_z_loss_factored(hidden, weight[:1], torch.zeros(4, dtype=torch.long), reduction="none")
    torch.testing.assert_close(single, torch.full((4,), math.log(2), dtype=torch.float64))
    # equal rows of weight (constant up to rounding): bounded scores, finite loss
    equal = weight[:1].expand(9, -1).clone() * 0.1
    z_loss = spherical_z_loss_factored(hidden, equal, labels, a=1.0, b=0.0, reduction="none")
    bound = math.log1p(math.exp(math.sqrt(8)))
    assert torch.isfinite(z_loss).all() and (z_loss <= bound + 1e-12).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_factored_z_loss_in_lower_precision(dtype):
    hidden, weight, labels = linear_problem(11, b=8, d=5, k=30)
    loss = spherical_z_loss_factored(hidden.to(dtype), weight.to(dtype), labels, reduction="none")
    assert loss.dtype == dtype
    reference = spherical_z_loss_factored(hidden.to(dtype).double(), weight.to(dtype).double(), labels,
                                          reduction="none")  # fmt: skip
    torch.testing.assert_close(loss.double(), reference, rtol=1e-2 if dtype == torch.bfloat16 else 1e-5, atol=1e-5)


def test_factored_z_loss_gradcheck():
    hidden, weight, labels = linear_problem(13, b=3, d=3, k=5)
    assert torch.autograd.gradcheck(
        lambda h, w: spherical_z_loss_factored(h, w, labels, a=1.3, b=0.2, reduction="none"),
        (hidden.requires_grad_(), weight.requires_grad_()),
    )


@pytest.mark.parametrize(
    "name, call",
    [
        ("hidden", lambda h, w, y: spherical_z_loss_factored(h[0], w, y)),
        ("hidden", lambda h, w, y: spherical_z_loss_factored(h.long(), w, y)),
        ("hidden", lambda h, w, y: spherical_z_loss_factored(h * math.nan, w, y)),
        ("weight", lambda h, w, y: spherical_z_loss_factored(h, w[:, :2], y)),
        ("weight", lambda h, w, y: spherical_z_loss_factored(h, w[:0], y[:0] * 0)),
        ("weight\\[labels\\]", lambda h, w, y: spherical_z_loss_factored(h, w * math.inf, y)),
        ("labels", lambda h, w, y: spherical_z_loss_factored(h, w, y + 100)),
        ("labels", lambda h, w, y: spherical_z_loss_factored(h, w, y[:2])),
        ("labels", lambda h, w, y: spherical_z_loss_factored(h, w, y > 0)),
        ("gram", lambda h, w, y: spherical_z_loss_factored(h, w, y, gram=w.T)),
        ("gram", lambda h, w, y: spherical_z_loss_factored(h, w, y, gram=w.T @ w * math.nan)),
        ("weight_sum", lambda h, w, y: spherical_z_loss_factored(h, w, y, weight_sum=w.sum(1))),
        ("a", lambda h, w, y: spherical_z_loss_factored(h, w, y, a=0.0)),
        ("b", lambda h, w, y: spherical_z_loss_factored(h, w, y, b=math.inf)),
        ("reduction", lambda h, w, y: spherical_z_loss_factored(h, w, y, reduction="avg")),
    ],
)
def test_factored_z_loss_rejects_bad_inputs(name, call):
    hidden, weight, labels = linear_problem(2)
    with pytest.raises(ValueError, match=name):
        call(hidden, weight, labels)


# ------------------------------------------------------------------ spherical and Taylor softmax

logit_rows = arrays("float64", st.integers(1, 12), elements=st.floats(-1e6, 1e6))


@SETTINGS
@given(logit_rows, st.floats(1e-6, 10))
def test_spherical_softmax_is_a_distribution_and_even(row, eps):
    z = torch.from_numpy(row)
    p = spherical_softmax(z, eps=eps)
    assert (p > 0).all() and abs(float(p.sum()) - 1) < 1e-12
    torch.testing.assert_close(spherical_softmax(-z, eps=eps), p)


@SETTINGS
@given(logit_rows)
def test_taylor_softmax_is_positive_and_a_distribution(row):
    z = torch.from_numpy(row)
    p = taylor_softmax(z)
    assert (p > 0).all() and abs(float(p.sum()) - 1) < 1e-12
    # every weight 1 + o + o^2/2 is at least 1/2: p_k >= (1/2) / sum_j w_j
    weights = 1 + z + z.square() / 2
    assert (weights >= 0.5).all()
    assert (p >= 0.5 / weights.sum() * (1 - 1e-12)).all()


def test_spherical_and_taylor_softmax_closed_forms():
    z = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(spherical_softmax(z, eps=0.01), torch.tensor([1.01, 4.01, 0.01], dtype=z.dtype) / 5.03)
    z = torch.tensor([0.0, 1.0, -1.0, 2.0], dtype=torch.float64)
    expected = torch.tensor([1.0, 2.5, 0.5, 5.0], dtype=z.dtype) / 9.0
    torch.testing.assert_close(taylor_softmax(z), expected)
    torch.testing.assert_close(log_taylor_softmax(z), expected.log())
    loss = taylor_softmax_cross_entropy(z[None], torch.tensor([2]))
    assert loss.item() == pytest.approx(math.log(18.0), rel=1e-14)
    loss = spherical_softmax_cross_entropy(torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
    assert loss.item() == pytest.approx(math.log(5.03 / 1.01), rel=1e-14)


def test_spherical_softmax_limits_in_eps():
    z = torch.tensor([[0.5, -2.0, 3.0, 1.0]], dtype=torch.float64)
    squares = z.square() / z.square().sum()
    torch.testing.assert_close(spherical_softmax(z, eps=1e-12), squares, rtol=1e-10, atol=0)
    torch.testing.assert_close(spherical_softmax(z, eps=1e12), torch.full_like(z, 0.25), rtol=1e-10, atol=0)
    # a huge eps, beyond float32's range, is uniform with a finite gradient
    x = torch.tensor([[0.5, -2.0, 3.0, 1.0]], requires_grad=True)
    spherical_softmax_cross_entropy(x, torch.tensor([2]), eps=1e300).backward()
    torch.testing.assert_close(spherical_softmax(x.detach(), eps=1e300), torch.full((1, 4), 0.25))
    assert torch.isfinite(x.grad).all()
    # a zero row is uniform for any eps
    torch.testing.assert_close(spherical_softmax(torch.zeros(3), eps=1e-37), torch.full((3,), 1 / 3))
    torch.testing.assert_close(spherical_softmax(torch.zeros(3).double(), eps=1e-300), torch.full((3,), 1 / 3).double())


@pytest.mark.parametrize("name", ["spherical", "taylor"])
def test_the_log_maps_are_the_log_of_the_direct_formula(name):
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 3
    if name == "spherical":
        weights, ours = z.square() + 0.05, log_spherical_softmax(z, eps=0.05)
    else:
        weights, ours = 1 + z + z.square() / 2, log_taylor_softmax(z)
    torch.testing.assert_close(ours, (weights / weights.sum(1, keepdim=True)).log())
    # along another dimension
    other = log_spherical_softmax(z.T, dim=0, eps=0.05) if name == "spherical" else log_taylor_softmax(z.T, dim=0)
    torch.testing.assert_close(other.T, ours)


def test_the_maps_keep_half_precision_dtype():
    z = torch.randn(3, 5).to(torch.bfloat16)
    for fn in (spherical_softmax, taylor_softmax, log_spherical_softmax, log_taylor_softmax, standardize_logits):
        assert fn(z).dtype == torch.bfloat16
    torch.testing.assert_close(taylor_softmax(z).float(), taylor_softmax(z.float()), rtol=1e-2, atol=1e-3)


# ------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck(name):
    logits, labels = problem(8, b=3, k=4)
    fn = LOSSES[name]
    assert torch.autograd.gradcheck(lambda x: fn(x, labels, reduction="none"), (logits.requires_grad_(),))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_are_finite_at_large_logits(name, dtype):
    g = torch.Generator().manual_seed(9)
    signs = torch.where(torch.rand(6, 5, generator=g) < 0.5, -1.0, 1.0)
    for logits in (signs * 1e4, torch.randn(6, 5, generator=g) * 1e4, torch.full((6, 5), -1e4)):
        x = logits.to(dtype).requires_grad_()
        loss = LOSSES[name](x, torch.arange(6) % 5)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_large_logits_give_the_right_values():
    # the spherical map at 1e30 in float32: o^2 would overflow, the log form does not
    z = torch.tensor([[1e30, -2e30, 0.0]])
    expected = torch.tensor([[1.0, 4.0, 0.0]]) / 5.0
    torch.testing.assert_close(spherical_softmax(z), expected)
    torch.testing.assert_close(taylor_softmax(z), expected)
    loss = spherical_z_loss(z, torch.tensor([1]), reduction="none")
    reference = spherical_z_loss(z.double() / 1e30, torch.tensor([1]), reduction="none")
    torch.testing.assert_close(loss.double(), reference, rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------------- bad inputs

LOGITS, LABELS = torch.randn(3, 4), torch.tensor([0, 1, 3])


@pytest.mark.parametrize(
    "name, call",
    [
        ("a", lambda: spherical_z_loss(LOGITS, LABELS, a=0.0)),
        ("a", lambda: spherical_z_loss(LOGITS, LABELS, a=-1.0)),
        ("a", lambda: spherical_z_loss(LOGITS, LABELS, a=math.inf)),
        ("b", lambda: spherical_z_loss(LOGITS, LABELS, b=math.nan)),
        ("b", lambda: spherical_z_loss(LOGITS, LABELS, b=-math.inf)),
        ("eps", lambda: spherical_softmax_cross_entropy(LOGITS, LABELS, eps=0.0)),
        ("eps", lambda: spherical_softmax(LOGITS, eps=math.inf)),
        ("eps", lambda: log_spherical_softmax(LOGITS, eps=-1e-3)),
        ("eps", lambda: spherical_softmax(LOGITS, eps=1e-300)),  # its square root underflows in float32
    ],
)
def test_bad_scalar_arguments_name_themselves(name, call):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_logits_and_labels(name):
    fn = LOSSES[name]
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor([[0.0, math.nan]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor([[0.0, math.inf]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.full((1, 3), -math.inf), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.randn(4), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.randint(0, 3, (2, 3)), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        fn(LOGITS, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="labels"):
        fn(LOGITS, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        fn(LOGITS, LABELS, reduction="avg")


@pytest.mark.parametrize("fn", [spherical_softmax, log_taylor_softmax, standardize_logits])
def test_the_maps_reject_bad_logits(fn):
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor(1.0))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor([0.0, math.nan]))
    if fn is not standardize_logits:  # a slice along `dim` with every entry masked
        with pytest.raises(ValueError, match="logits"):
            fn(torch.tensor([[0.0, -math.inf], [1.0, -math.inf]]), dim=0)
