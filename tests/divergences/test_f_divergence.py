"""f-divergences against SciPy and closed forms."""

import math

import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from regkit.divergences import DIVERGENCES, f_divergence, generator


def distributions(seed=0, shape=(5, 7)):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 2).softmax(-1), (
        torch.randn(shape, generator=g, dtype=torch.float64) * 2
    ).softmax(-1)


def test_kl_divergences_match_scipy():
    p, q = distributions()
    torch.testing.assert_close(
        f_divergence(p, q, "reverse_kl"), torch.from_numpy(rel_entr(p.numpy(), q.numpy()).sum(-1))
    )
    torch.testing.assert_close(
        f_divergence(p, q, "forward_kl"), torch.from_numpy(rel_entr(q.numpy(), p.numpy()).sum(-1))
    )


def test_js_is_twice_the_jensen_shannon_divergence():
    p, q = distributions()
    expected = 2 * torch.from_numpy(jensenshannon(p.numpy(), q.numpy(), axis=-1)) ** 2
    torch.testing.assert_close(f_divergence(p, q, "js"), expected)


def test_tv_chi2_alpha_closed_forms():
    p, q = distributions()
    torch.testing.assert_close(f_divergence(p, q, "total_variation"), 0.5 * (p - q).abs().sum(-1))
    torch.testing.assert_close(f_divergence(p, q, "chi2"), ((p - q) ** 2 / q).sum(-1))
    a = 0.3
    expected = (1 - (p ** (1 - a) * q**a).sum(-1)) / (a * (1 - a))
    torch.testing.assert_close(f_divergence(p, q, "alpha", alpha=a), expected)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_every_divergence_is_sum_q_f_of_ratio_and_nonnegative(name):
    p, q = distributions(1)
    f = generator(name, alpha=0.4).f
    torch.testing.assert_close(f_divergence(p, q, name, alpha=0.4), (q * f(p / q)).sum(-1))
    assert torch.all(f_divergence(p, q, name, alpha=0.4) >= -1e-12)
    torch.testing.assert_close(f_divergence(p, p, name, alpha=0.4), torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("name", ["reverse_kl", "forward_kl", "js", "alpha", "chi2"])
def test_f_prime_is_the_derivative_of_f(name):
    u = torch.linspace(0.2, 5, 50, dtype=torch.float64).requires_grad_()
    gen = generator(name, alpha=0.7)
    (derivative,) = torch.autograd.grad(gen.f(u).sum(), u)
    torch.testing.assert_close(gen.f_prime(u.detach()), derivative)


def test_logits_and_log_probs_inputs_agree_and_handle_extreme_logits():
    logits_p = torch.tensor([[800.0, 0.0, -800.0]], dtype=torch.float64)
    logits_q = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    by_logits = f_divergence(logits_p, logits_q, "reverse_kl", input="logits")
    by_log_probs = f_divergence(logits_p.log_softmax(-1), logits_q.log_softmax(-1), "reverse_kl", input="log_probs")
    assert torch.isfinite(by_logits).all()
    torch.testing.assert_close(by_logits, by_log_probs)
    torch.testing.assert_close(by_logits, torch.tensor([math.log(3)], dtype=torch.float64))


def test_alpha_interpolates_between_the_kls():
    p, q = distributions(2)
    torch.testing.assert_close(
        f_divergence(p, q, "alpha", alpha=1e-6), f_divergence(p, q, "reverse_kl"), rtol=1e-4, atol=1e-6
    )
    torch.testing.assert_close(
        f_divergence(p, q, "alpha", alpha=1 - 1e-6), f_divergence(p, q, "forward_kl"), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda: f_divergence(torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5])), "sum to one"),
        (lambda: f_divergence(torch.tensor([1.5, -0.5]), torch.tensor([0.5, 0.5])), "non-negative"),
        (lambda: f_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.3, 0.5])), "same shape"),
        (
            lambda: f_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), "hellinger"),
            "valid: reverse_kl, forward_kl, js, alpha, total_variation, chi2",
        ),
        (lambda: f_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), "alpha", alpha=1.5), "alpha"),
    ],
)
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
