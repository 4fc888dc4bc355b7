"""Balanced Softmax (CE on logits + log prior) and Balanced MSE (batch Monte-Carlo form): against
F.cross_entropy, a brute-force loop over the batch and the authors' Gaussian form, the gradient of
the learnable noise scale, B = 1, the supported shapes and the rejected inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import MultivariateNormal

from regkit.losses import BalancedMSELoss, balanced_mse_loss, balanced_softmax_loss

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
REDUCTIONS = ["none", "mean", "sum"]


def problem(seed, b=6, k=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g, dtype=dtype) * 2
    labels = torch.randint(0, k, (b,), generator=g)
    counts = torch.randint(1, 200, (k,), generator=g)
    return logits, labels, counts


# ------------------------------------------------------------------------------ Balanced Softmax


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_counts_are_cross_entropy_exactly(dtype, reduction):
    logits, labels, _ = problem(0, dtype=dtype)
    ours_x, ref_x = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = balanced_softmax_loss(ours_x, labels, class_counts=[37] * 5, reduction=reduction)
    reference = F.cross_entropy(ref_x, labels, reduction=reduction)
    assert torch.equal(ours, reference)
    ours.sum().backward()
    reference.sum().backward()
    assert torch.equal(ours_x.grad, ref_x.grad)


@SETTINGS
@given(seed=st.integers(0, 2**16), reduction=st.sampled_from(REDUCTIONS))
def test_balanced_softmax_is_cross_entropy_of_logits_plus_log_prior(seed, reduction):
    logits, labels, counts = problem(seed)
    prior = counts.double() / counts.sum()
    ours_x, ref_x = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = balanced_softmax_loss(ours_x, labels, class_counts=counts, reduction=reduction)
    reference = F.cross_entropy(ref_x + prior.log(), labels, reduction=reduction)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    ours.sum().backward()
    reference.sum().backward()
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-12, atol=1e-12)


def test_balanced_softmax_hand_computed():
    # logits 0: p_y = pi_y, so the loss is -log pi_y
    logits = torch.zeros(2, 2, dtype=torch.float64)
    loss = balanced_softmax_loss(logits, torch.tensor([0, 1]), class_counts=[1, 3], reduction="none")
    torch.testing.assert_close(loss, torch.tensor([math.log(4), math.log(4 / 3)], dtype=torch.float64))


def test_counts_any_positive_multiple_or_the_prior_itself():
    logits, labels, counts = problem(1)
    expected = balanced_softmax_loss(logits, labels, class_counts=counts)
    for other in (counts * 7, counts.double() / counts.sum(), counts.tolist(), counts.to(torch.int16)):
        torch.testing.assert_close(balanced_softmax_loss(logits, labels, class_counts=other), expected)


def test_a_zero_count_removes_its_class():
    logits, _, counts = problem(2, k=4)
    counts[2] = 0
    labels = torch.tensor([0, 1, 3, 0, 1, 3])
    x = logits.clone().requires_grad_()
    loss = balanced_softmax_loss(x, labels, class_counts=counts, reduction="sum")
    loss.backward()
    keep = [0, 1, 3]
    kept = logits[:, keep].clone().requires_grad_()
    reduced = balanced_softmax_loss(kept, torch.tensor([0, 1, 2, 0, 1, 2]), class_counts=counts[keep], reduction="sum")
    reduced.backward()
    torch.testing.assert_close(loss, reduced)
    torch.testing.assert_close(x.grad[:, keep], kept.grad)
    assert (x.grad[:, 2] == 0).all()
    with pytest.raises(ValueError, match="labels.*count"):
        balanced_softmax_loss(logits, torch.tensor([2, 0, 0, 0, 0, 0]), class_counts=counts)


def test_half_precision_keeps_the_dtype():
    logits, labels, counts = problem(3)
    value = balanced_softmax_loss(logits.to(torch.bfloat16), labels, class_counts=counts, reduction="none")
    assert value.dtype == torch.bfloat16
    expected = balanced_softmax_loss(logits.to(torch.bfloat16).double(), labels, class_counts=counts, reduction="none")
    torch.testing.assert_close(value.double(), expected, rtol=1.6e-2, atol=1.6e-2)


@pytest.mark.parametrize(
    "counts, error, match",
    [
        ([1, 2, 3], ValueError, r"class_counts must have shape \(5,\)"),
        ([[1, 2, 3, 4, 5]], ValueError, r"class_counts must have shape \(5,\)"),
        ([1, 2, -3, 4, 5], ValueError, "class_counts must be non-negative"),
        ([1, 2, math.nan, 4, 5], ValueError, "class_counts has 1 non-finite"),
        ([1, 2, math.inf, 4, 5], ValueError, "class_counts has 1 non-finite"),
        ([0, 0, 0, 0, 0], ValueError, "class_counts must have at least one positive"),
        (torch.ones(5, dtype=torch.bool), ValueError, "class_counts must be real"),
        ("12345", TypeError, "class_counts must be a tensor or a sequence"),
    ],
)
def test_bad_class_counts(counts, error, match):
    logits, labels, _ = problem(4)
    with pytest.raises(error, match=match):
        balanced_softmax_loss(logits, labels, class_counts=counts)


def test_bad_logits_and_labels():
    logits, labels, counts = problem(5)
    with pytest.raises(ValueError, match="logits"):
        balanced_softmax_loss(logits[0], labels, class_counts=counts)
    with pytest.raises(ValueError, match="logits"):
        balanced_softmax_loss(torch.full_like(logits, math.nan), labels, class_counts=counts)
    with pytest.raises(ValueError, match="labels"):
        balanced_softmax_loss(logits, labels + 5, class_counts=counts)
    with pytest.raises(ValueError, match="reduction"):
        balanced_softmax_loss(logits, labels, class_counts=counts, reduction="avg")


# ---------------------------------------------------------------------------------- Balanced MSE


def pair(seed, shape):
    """Predictions and targets of ``shape``, float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def brute_force_bmc(pred, target, noise_var):
    """The BMC loss of each example, one at a time, in Python floats."""
    p = pred.reshape(len(pred), -1).tolist()
    t = target.reshape(len(target), -1).tolist()
    losses = []
    for i in range(len(p)):
        logits = [-sum((a - b) ** 2 for a, b in zip(p[i], t[j])) / (2 * noise_var) for j in range(len(t))]
        top = max(logits)
        log_normalizer = top + math.log(sum(math.exp(v - top) for v in logits))
        losses.append((log_normalizer - logits[i]) * 2 * noise_var)
    return torch.tensor(losses, dtype=torch.float64)


@pytest.mark.parametrize("shape", [(7,), (7, 1), (7, 3)])
@pytest.mark.parametrize("noise_var", [0.1, 1.0, 4.0])
def test_bmc_matches_a_brute_force_loop_over_the_batch(shape, noise_var):
    pred, target = pair(6, shape)
    expected = brute_force_bmc(pred, target, noise_var)
    torch.testing.assert_close(balanced_mse_loss(pred, target, noise_var=noise_var, reduction="none"), expected)
    torch.testing.assert_close(balanced_mse_loss(pred, target, noise_var=noise_var), expected.mean())
    torch.testing.assert_close(balanced_mse_loss(pred, target, noise_var=noise_var, reduction="sum"), expected.sum())


def test_bmc_equals_the_authors_gaussian_form():
    # the authors' multi-dimensional code: logits = MVN(pred_i, noise_var I).log_prob(target_j), CE, times 2 noise_var
    pred, target = pair(7, (9, 2))
    noise_var = torch.tensor(0.7, dtype=torch.float64)
    gaussians = MultivariateNormal(pred.unsqueeze(1), noise_var * torch.eye(2, dtype=torch.float64))
    logits = gaussians.log_prob(target.unsqueeze(0))
    expected = F.cross_entropy(logits, torch.arange(9)) * (2 * noise_var)
    torch.testing.assert_close(balanced_mse_loss(pred, target, noise_var=noise_var), expected)


def test_bmc_shapes_b_and_b1_agree():
    g = torch.Generator().manual_seed(8)
    pred, target = torch.randn(5, generator=g), torch.randn(5, generator=g)
    flat = balanced_mse_loss(pred, target, noise_var=0.5, reduction="none")
    column = balanced_mse_loss(pred[:, None], target[:, None], noise_var=0.5, reduction="none")
    torch.testing.assert_close(flat, column)
    assert flat.shape == (5,)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 4)])
def test_bmc_of_one_example_is_zero(shape):
    pred = torch.randn(shape, requires_grad=True)
    loss = balanced_mse_loss(pred, torch.randn(shape), noise_var=torch.tensor(2.0, requires_grad=True))
    loss.backward()
    assert loss.item() == 0.0 and (pred.grad == 0).all()


@SETTINGS
@given(seed=st.integers(0, 2**16), shift=st.floats(-100, 100))
def test_bmc_is_invariant_to_a_common_shift(seed, shift):
    pred, target = pair(seed, (6, 2))
    torch.testing.assert_close(
        balanced_mse_loss(pred + shift, target + shift, noise_var=1.3), balanced_mse_loss(pred, target, noise_var=1.3)
    )


def test_the_scale_is_detached_and_sigma_gets_its_gradient_from_the_logits():
    pred, target = pair(9, (8, 1))
    criterion = BalancedMSELoss(0.8).double()
    loss = criterion(pred, target)
    loss.backward()
    grad = criterion.noise_sigma.grad
    assert grad is not None and torch.isfinite(grad) and grad != 0

    def with_fixed_scale(sigma):  # d/dsigma of CE(logits(sigma)) * 2 * 0.8^2, the scale held constant
        bare = balanced_mse_loss(pred, target, noise_var=sigma**2, rescale=False)
        return bare * 2 * 0.8**2

    h = 1e-6
    numeric = (with_fixed_scale(0.8 + h) - with_fixed_scale(0.8 - h)) / (2 * h)
    assert grad.item() == pytest.approx(numeric.item(), rel=1e-6)
    # the authors' formula, sigma as a leaf: the same gradient
    sigma = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    logits = -(pred - target.T).pow(2) / (2 * sigma**2)
    (F.cross_entropy(logits, torch.arange(8)) * (2 * sigma**2).detach()).backward()
    torch.testing.assert_close(grad, sigma.grad)


def test_fixed_sigma_is_a_buffer():
    criterion = BalancedMSELoss(1.5, learnable=False)
    assert list(criterion.parameters()) == [] and "noise_sigma" in dict(criterion.named_buffers())
    pred, target = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(criterion(pred, target), balanced_mse_loss(pred, target, noise_var=2.25))
    assert "learnable=False" in repr(criterion)


def test_rescale_false_is_the_bare_cross_entropy():
    pred, target = torch.randn(5, 1), torch.randn(5, 1)
    logits = -(pred - target.T).square() / (2 * 0.3)
    bare = balanced_mse_loss(pred, target, noise_var=0.3, rescale=False)
    torch.testing.assert_close(bare, F.cross_entropy(logits, torch.arange(5)))


def test_bmc_gradients_flow_to_pred_and_half_precision_keeps_the_dtype():
    pred = torch.randn(6, 2, requires_grad=True)
    balanced_mse_loss(pred, torch.randn(6, 2), noise_var=1.0).backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad != 0).any()
    half = balanced_mse_loss(pred.detach().half(), torch.zeros(6, 2).half(), noise_var=1.0)
    assert half.dtype == torch.float16
    expected = balanced_mse_loss(pred.detach().half().double(), torch.zeros(6, 2).double(), noise_var=1.0)
    torch.testing.assert_close(half.double(), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"noise_var": 0.0}, ValueError, "noise_var"),
        ({"noise_var": -1.0}, ValueError, "noise_var"),
        ({"noise_var": math.nan}, ValueError, "noise_var"),
        ({"noise_var": math.inf}, ValueError, "noise_var"),
        ({"noise_var": torch.tensor([1.0, 2.0])}, ValueError, "noise_var"),
        ({"noise_var": torch.tensor(0.0)}, ValueError, "noise_var"),
        ({"noise_var": torch.tensor(1)}, ValueError, "noise_var"),
        ({"noise_var": "1"}, TypeError, "noise_var"),
        ({"noise_var": 1.0, "reduction": "avg"}, ValueError, "reduction"),
        ({"noise_var": 1.0, "rescale": 1}, TypeError, "rescale"),
    ],
)
def test_bmc_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        balanced_mse_loss(torch.randn(4, 1), torch.randn(4, 1), **kwargs)


@pytest.mark.parametrize(
    "pred, target, match",
    [
        (torch.randn(4, 1), torch.randn(4), "target must have the shape of pred"),
        (torch.randn(4, 2), torch.randn(4, 1), "target must have the shape of pred"),
        (torch.randn(4, 2, 2), torch.randn(4, 2, 2), "pred must have shape"),
        (torch.randn(0, 1), torch.randn(0, 1), "pred must hold at least one example"),
        (torch.tensor([[1.0], [math.nan]]), torch.randn(2, 1), "pred"),
        (torch.randn(2, 1), torch.tensor([[math.inf], [0.0]]), "target"),
        (torch.arange(4), torch.randn(4), "pred"),
    ],
)
def test_bmc_bad_inputs(pred, target, match):
    with pytest.raises(ValueError, match=match):
        balanced_mse_loss(pred, target, noise_var=1.0)


def test_module_bad_arguments_and_a_collapsed_sigma():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="init_noise_sigma"):
            BalancedMSELoss(bad)
    with pytest.raises(TypeError, match="learnable"):
        BalancedMSELoss(1.0, learnable="yes")
    with pytest.raises(ValueError, match="reduction"):
        BalancedMSELoss(1.0, reduction="avg")
    criterion = BalancedMSELoss(1.0)
    with torch.no_grad():
        criterion.noise_sigma.zero_()  # as if training had driven sigma to 0
    with pytest.raises(ValueError, match="noise_var"):
        criterion(torch.randn(3, 1), torch.randn(3, 1))
