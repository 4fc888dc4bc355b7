"""TRADES (Zhang et al. 2019): CE + β KL(p_clean ‖ p_adv), against the reference's KLDivLoss form, a hand
computation, its limits (β = 0, adv = clean), gradients through both arms, masks, dtypes and rejected arguments."""

import math

import pytest
import torch
import torch.nn.functional as F

from regkit.losses import trades_kl, trades_loss


def problem(seed=0, b=12, k=5, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g, dtype=dtype) * scale
    adv_logits = logits + torch.randn(b, k, generator=g, dtype=dtype)
    return logits, adv_logits, torch.randint(0, k, (b,), generator=g)


def reference(logits, adv_logits, labels, beta):
    """The authors' trades.py: CE + beta / B · KLDivLoss(sum)(log_softmax(adv), softmax(clean))."""
    kl = F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(logits, dim=1), reduction="sum")
    return F.cross_entropy(logits, labels) + beta / len(labels) * kl


def by_hand(logits, adv_logits, labels, beta):
    """Sum_k p_k log(p_k / q_k) per example, with p, q the softmaxes, in plain Python floats."""
    out = []
    for z, z_adv, y in zip(logits.tolist(), adv_logits.tolist(), labels.tolist()):
        p = [math.exp(v) / sum(math.exp(u) for u in z) for v in z]
        q = [math.exp(v) / sum(math.exp(u) for u in z_adv) for v in z_adv]
        out.append(-math.log(p[y]) + beta * sum(pk * math.log(pk / qk) for pk, qk in zip(p, q)))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("beta", [0.0, 1.0, 6.0])
def test_matches_the_reference_and_a_hand_computation(beta):
    logits, adv_logits, labels = problem(1)
    loss = trades_loss(logits, adv_logits, labels, beta=beta)
    torch.testing.assert_close(loss, reference(logits, adv_logits, labels, beta))
    torch.testing.assert_close(
        trades_loss(logits, adv_logits, labels, beta=beta, reduction="none"), by_hand(logits, adv_logits, labels, beta)
    )
    torch.testing.assert_close(
        trades_loss(logits, adv_logits, labels, beta=beta, reduction="sum"), loss * len(labels), rtol=1e-12, atol=0
    )


def test_beta_zero_is_cross_entropy():
    logits, adv_logits, labels = problem(2)
    torch.testing.assert_close(trades_loss(logits, adv_logits, labels, beta=0.0), F.cross_entropy(logits, labels))


def test_the_kl_term_vanishes_at_the_clean_point_and_for_a_shift():
    logits, _, labels = problem(3)
    shifted = logits + torch.arange(len(labels), dtype=logits.dtype)[:, None]  # a constant per row
    for same in (logits, shifted):
        kl = trades_kl(logits, same)
        assert kl.shape == (len(labels),)
        torch.testing.assert_close(kl, torch.zeros_like(kl), rtol=0, atol=1e-12)
        torch.testing.assert_close(trades_loss(logits, same, labels, beta=6.0), F.cross_entropy(logits, labels))


def test_kl_is_positive_and_matches_kl_div():
    logits, adv_logits, _ = problem(4)
    kl = trades_kl(logits, adv_logits)
    assert (kl > 0).all()
    expected = F.kl_div(F.log_softmax(adv_logits, 1), F.log_softmax(logits, 1), reduction="none", log_target=True)
    torch.testing.assert_close(kl, expected.sum(1))
    torch.testing.assert_close(trades_kl(logits, adv_logits, reduction="mean"), kl.mean())


def test_gradients_flow_through_both_logits_as_in_the_reference():
    logits, adv_logits, labels = problem(5)
    ours = [t.clone().requires_grad_(True) for t in (logits, adv_logits)]
    ref = [t.clone().requires_grad_(True) for t in (logits, adv_logits)]
    trades_loss(*ours, labels, beta=6.0).backward()
    reference(*ref, labels, 6.0).backward()
    for a, b in zip(ours, ref):
        assert a.grad.abs().sum() > 0
        torch.testing.assert_close(a.grad, b.grad)
    assert torch.autograd.gradcheck(
        lambda z, z_adv: trades_loss(z, z_adv, labels, beta=2.0), tuple(t.detach().requires_grad_(True) for t in ours)
    )


def test_a_class_masked_in_both_rows_is_no_class():
    logits, adv_logits, labels = problem(6, k=5)
    labels = labels.clamp(max=3)
    masked = [t.clone() for t in (logits, adv_logits)]
    for t in masked:
        t[:, 4] = -torch.inf
    z = [t.clone().requires_grad_(True) for t in masked]
    loss = trades_loss(*z, labels, beta=6.0, reduction="none")
    loss.sum().backward()
    torch.testing.assert_close(loss, trades_loss(logits[:, :4], adv_logits[:, :4], labels, beta=6.0, reduction="none"))
    for t in z:
        assert torch.isfinite(t.grad).all() and (t.grad[:, 4] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_is_computed_in_float32(dtype):
    logits, adv_logits, labels = problem(7, dtype=torch.float32)
    loss = trades_loss(logits.to(dtype), adv_logits.to(dtype), labels, beta=6.0)
    assert loss.dtype == dtype
    expected = trades_loss(logits.to(dtype).float(), adv_logits.to(dtype).float(), labels, beta=6.0)
    torch.testing.assert_close(loss.float(), expected, rtol=1e-2, atol=1e-2)


def test_rejected_arguments():
    logits, adv_logits, labels = problem(8)
    with pytest.raises(ValueError, match="beta"):
        trades_loss(logits, adv_logits, labels, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        trades_loss(logits, adv_logits, labels, beta=math.nan)
    with pytest.raises(ValueError, match="adv_logits"):
        trades_loss(logits, adv_logits[:, :3], labels, beta=1.0)
    with pytest.raises(ValueError, match="adv_logits"):
        trades_kl(logits, torch.full_like(adv_logits, math.nan))
    masked = adv_logits.clone()
    masked[0, 0] = -torch.inf
    with pytest.raises(ValueError, match="masked"):
        trades_kl(logits, masked)
    with pytest.raises(ValueError, match="labels"):
        trades_loss(logits, adv_logits, labels + 10, beta=1.0)
    with pytest.raises(ValueError, match="reduction"):
        trades_kl(logits, adv_logits, reduction="max")
