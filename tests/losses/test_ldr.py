"""LDR-KL and ALDR-KL against the regularized worst case, their limits and the adaptive update."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from regkit.losses import ALDRKLLoss, ldr_kl_loss


def problem(seed=0, b=12, k=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64) * 2, torch.randint(0, k, (b,), generator=g)


def brute_ldr(scores, labels, lam, margin):
    """max over q in the simplex of <q, δ> − λ KL(q || uniform), by the Gibbs variational formula checked with q*."""
    k = scores.shape[1]
    delta = scores - scores[np.arange(len(labels)), labels][:, None] + margin * (1 - np.eye(k)[labels])
    q = np.exp(delta / lam)
    q /= q.sum(1, keepdims=True)
    return (q * delta).sum(1) - lam * (q * np.log(k * q)).sum(1), delta


def test_ldr_kl_is_the_regularized_worst_case():
    logits, labels = problem(2)
    s = F.softplus(logits)
    s = (s / s.mean(1, keepdim=True)).numpy()
    value, delta = brute_ldr(s, labels.numpy(), 0.7, 2.0)
    ours = ldr_kl_loss(logits, labels, lam=0.7, margin=2.0, reduction="none").numpy()
    np.testing.assert_allclose(ours, value, rtol=1e-10)
    # and no other distribution does better (random points of the simplex)
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.dirichlet(np.ones(5), size=len(labels))
        other = (q * delta).sum(1) - 0.7 * (q * np.log(5 * q)).sum(1)
        assert np.all(other <= ours + 1e-9)


def test_ldr_kl_limits():
    logits, labels = problem(3)
    s = F.softplus(logits)
    s = s / s.mean(1, keepdim=True)
    delta = s - s.gather(1, labels[:, None]) + 2.0 * (1 - F.one_hot(labels, 5).double())
    large = ldr_kl_loss(logits, labels, lam=1e4, reduction="none")
    small = ldr_kl_loss(logits, labels, lam=1e-4, reduction="none")
    torch.testing.assert_close(large, delta.mean(1), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(small, delta.max(1).values, rtol=1e-3, atol=1e-3)


def test_aldr_kl_update_and_loss_against_a_direct_computation():
    logits, labels = problem(4, b=6)
    index = torch.tensor([0, 2, 4, 6, 8, 9])
    loss_fn = ALDRKLLoss(10, 5, lam0=1.0, alpha=2.0, margin=1.0).double()
    value = loss_fn(logits, labels, index)
    k, lam0, alpha = 5, 1.0, 2.0
    s = logits / (logits.abs().sum(1, keepdim=True) / k)
    q = torch.softmax(s / lam0, 1) + 1e-5
    q = q / q.sum(1, keepdim=True)
    lam = lam0 * (1 - (q * torch.log(k * q)).sum(1) / (alpha * math.log(k)))
    torch.testing.assert_close(loss_fn.lam[index], lam)
    assert torch.all(loss_fn.lam[[1, 3, 5, 7]] == lam0)  # untouched examples keep λ0
    delta = s - s.gather(1, labels[:, None]) + (1 - F.one_hot(labels, 5).double())
    expected = (
        lam * (torch.logsumexp(delta / lam[:, None], 1) - math.log(k)) - 0.5 * alpha * math.log(k) * (lam - lam0) ** 2
    )
    torch.testing.assert_close(value, expected.mean())
