"""Issue 12, kind 1 (outside OT): cancellation. 1 − exp(small), log(1 + small), spreads near
zero and limit parameters near their ends, each tested at the limit against its closed form."""

import math

import pytest
import torch
import torch.nn.functional as F
from _robustness_cases import FAST
from hypothesis import given
from hypothesis import strategies as st

from regkit.divergences import f_divergence, f_dpo_loss, generator
from regkit.losses import focal_loss, gce_loss, label_smoothing_loss, ldr_kl_loss, mae_loss, sce_loss
from regkit.losses.pass_at_n import coverage_gradient_factor
from regkit.rl import group_advantages


def problem(seed, b=4, k=5, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64) * scale, torch.randint(0, k, (b,), generator=g)


@FAST
@given(seed=st.integers(0, 2**16), q=st.sampled_from([1e-8, 1e-12, 1e-30]))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gce_tends_to_cross_entropy_as_q_goes_to_0(seed, q, dtype):
    logits, labels = problem(seed)
    logits = logits.to(dtype)
    ce = F.cross_entropy(logits.double(), labels, reduction="none")  # the limit, exactly
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    value = gce_loss(logits, labels, q=q, reduction="none").double()
    torch.testing.assert_close(value, ce, rtol=tol + 10 * q, atol=tol)


@FAST
@given(seed=st.integers(0, 2**16), eps=st.sampled_from([1e-6, 1e-9, 1e-12]))
def test_alpha_divergence_limits(seed, eps):
    g = torch.Generator().manual_seed(seed)
    p, q = torch.randn(2, 6, generator=g, dtype=torch.float64)
    for alpha, limit in ((eps, "reverse_kl"), (1 - eps, "forward_kl")):
        value = f_divergence(p, q, "alpha", alpha=alpha, input="logits")
        torch.testing.assert_close(value, f_divergence(p, q, limit, input="logits"), rtol=1e-4, atol=1e-12)
    u = torch.tensor([0.0, 1e-3, 0.5, 1.0, 2.0, 30.0], dtype=torch.float64)
    reverse, forward = generator("reverse_kl").f(u), generator("forward_kl").f(u[1:])
    f_small = generator("alpha", alpha=eps).f(u)
    torch.testing.assert_close(f_small[1:], reverse[1:] - u[1:] + 1, rtol=1e-4, atol=1e-9)  # u log u - u + 1
    f_large = generator("alpha", alpha=1 - eps).f(u)
    torch.testing.assert_close(f_large[1:], forward + u[1:] - 1, rtol=1e-4, atol=1e-9)  # -log u + u - 1


def test_alpha_divergence_of_identical_distributions_is_exactly_small():
    p = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float32)
    for alpha in (1e-7, 0.5, 1 - 1e-7):
        assert abs(float(f_divergence(p, p, "alpha", alpha=alpha))) < 1e-6


@FAST
@given(seed=st.integers(0, 2**16), margin=st.sampled_from([0.0, 1.0, 2.0]))
def test_ldr_kl_limits_of_lambda(seed, margin):
    logits, labels = problem(seed)
    s = F.softplus(logits)
    s = s / s.mean(1, keepdim=True)
    delta = s - s.gather(1, labels[:, None]) + margin * (1 - F.one_hot(labels, 5).double())
    large = ldr_kl_loss(logits, labels, lam=1e12, margin=margin, reduction="none")
    small = ldr_kl_loss(logits, labels, lam=1e-12, margin=margin, reduction="none")
    torch.testing.assert_close(large, delta.mean(1), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(small, delta.max(1).values, rtol=1e-9, atol=1e-9)
    large32 = ldr_kl_loss(logits.float(), labels, lam=1e8, margin=margin, reduction="none")
    torch.testing.assert_close(large32.double(), delta.mean(1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gap", [20.0, 40.0, 80.0])
def test_one_minus_p_near_p_equal_1(gap):
    """1 − p_y = e^-gap/(1 + e^-gap) to full relative accuracy in float32, where 1 − exp(log p) is 0."""
    logits, labels = torch.tensor([[gap, 0.0]]), torch.tensor([0])
    one_minus_p = math.exp(-gap) / (1 + math.exp(-gap))
    assert float(mae_loss(logits, labels)) == pytest.approx(2 * one_minus_p, rel=1e-5)
    assert float(sce_loss(logits, labels, alpha=0.0)) == pytest.approx(-math.log(1e-4) * one_minus_p, rel=1e-5)
    assert float(gce_loss(logits, labels, q=1.0)) == pytest.approx(one_minus_p, rel=1e-5)
    log_p = -math.log1p(math.exp(-gap))
    assert float(focal_loss(logits, labels, gamma=1.0)) == pytest.approx(-one_minus_p * log_p, rel=1e-5)


def test_focal_gamma_0_is_cross_entropy_and_label_smoothing_ends():
    logits, labels = problem(1)
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(focal_loss(logits, labels, gamma=0.0), ce)
    torch.testing.assert_close(focal_loss(logits, labels, gamma=1e-12), ce)
    torch.testing.assert_close(label_smoothing_loss(logits, labels, epsilon=0.0), ce)
    torch.testing.assert_close(label_smoothing_loss(logits, labels, epsilon=1.0), -logits.log_softmax(1).mean())


@pytest.mark.parametrize("n", [1, 2, 16])
def test_coverage_gradient_factor_limits(n):
    p = torch.tensor([0.0, 1e-30, 1e-12, 1 - 1e-12, 1.0], dtype=torch.float64)
    factor = coverage_gradient_factor(p, n)
    assert torch.isfinite(factor).all()
    assert factor[0] == 1.0 and float(factor[1]) == pytest.approx(1.0) and float(factor[2]) == pytest.approx(1.0)
    assert float(factor[4]) == (1.0 if n == 1 else 0.0)
    if n > 1:
        assert float(factor[3]) == pytest.approx(n * 1e-12 ** (n - 1), rel=1e-3, abs=1e-300)


def test_group_advantages_spread_near_zero():
    rewards = torch.tensor([[1e6, 1e6 + 1e-3, 1e6 + 2e-3], [5.0, 5.0, 5.0]], dtype=torch.float64)
    adv = group_advantages(rewards, eps=0.0)
    torch.testing.assert_close(adv[0], torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6)
    assert (adv[1] == 0).all()


@pytest.mark.parametrize("log_ratio", [30.0, 100.0])
def test_js_link_at_large_log_ratio(log_ratio):
    """f'(u) = log 2 + log sigmoid(log u): the chosen/rejected gap e^-30 − e^-100 survives."""
    chosen, rejected = torch.tensor([log_ratio], dtype=torch.float64), torch.tensor([30.0], dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    loss = f_dpo_loss(chosen, rejected, zero, zero, divergence="js", beta=1.0)
    margin = -math.log1p(math.exp(-log_ratio)) + math.log1p(math.exp(-30.0))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-margin)), rel=1e-12)
