"""Issue 12, kind 6: data-dependent normalizers and per-example state. Constant rows (all
zero, large, very negative) go to every normalizing loss; the stateful losses (ALDRKLLoss,
ELRLoss, PSKD) are never poisoned: a bad batch is rejected before the state is written, and
after any batch the next call equals what a fresh criterion gives."""

import math

import pytest
import torch
from _robustness_cases import FAST
from hypothesis import given
from hypothesis import strategies as st

from regkit.losses import ALDRKLLoss, ELRLoss, ldr_kl_loss
from regkit.regularizers import PSKD
from regkit.rl import group_advantages

CONSTANTS = [0.0, 1.0, -200.0, 1e4, -1e30, 3e38]


@FAST
@given(constant=st.sampled_from(CONSTANTS), seed=st.integers(0, 2**16))
def test_aldr_constant_rows_keep_the_state_finite_and_fresh(constant, seed):
    g = torch.Generator().manual_seed(seed)
    criterion = ALDRKLLoss(6, 3)
    logits = torch.randn(3, 3, generator=g)
    logits[1] = constant
    first = criterion(logits, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    assert torch.isfinite(first) and torch.isfinite(criterion.lam).all() and (criterion.lam > 0).all()
    if constant == 0.0:  # scores 0: the KL to uniform is 0, lambda stays lambda0
        assert criterion.lam[1] == pytest.approx(1.0)
    nxt = torch.tensor([[1.0, -0.5, 0.2]])
    value = criterion(nxt, torch.tensor([0]), torch.tensor([4]))
    assert float(value) == pytest.approx(float(ALDRKLLoss(6, 3)(nxt, torch.tensor([0]), torch.tensor([4]))))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_stateful_losses_reject_a_bad_batch_before_touching_the_state(bad):
    logits = torch.tensor([[0.1, 0.2, 0.3], [bad, 0.0, 1.0]])
    labels, index = torch.tensor([0, 1]), torch.tensor([0, 1])
    for criterion, state in ((ALDRKLLoss(2, 3), "lam"), (ELRLoss(2, 3), "targets")):
        before = getattr(criterion, state).clone()
        with pytest.raises(ValueError, match="logits"):
            criterion(logits, labels, index)
        torch.testing.assert_close(getattr(criterion, state), before)
    pskd = PSKD(2, 3, epochs=2)
    with pytest.raises(ValueError, match="logits"):
        pskd.record(logits, index)
    with pytest.raises(ValueError, match="logits"):
        pskd(logits, labels, index)
    assert (pskd.current == 0).all()


@FAST
@given(constant=st.sampled_from(CONSTANTS), seed=st.integers(0, 2**16))
def test_elr_and_pskd_constant_rows(constant, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, generator=g)
    logits[0] = constant
    elr = ELRLoss(2, 3)
    assert torch.isfinite(elr(logits, torch.tensor([0, 1]), torch.tensor([0, 1])))
    torch.testing.assert_close(elr.targets[0], torch.full((3,), 0.3 / 3))  # (1 - beta) * uniform
    pskd = PSKD(2, 3, epochs=2)
    pskd.record(logits, torch.tensor([0, 1]))
    pskd.end_epoch()
    torch.testing.assert_close(
        pskd.targets(torch.tensor([0]), torch.tensor([0]), 1)[0], torch.tensor([0.6 + 0.4 / 3, 0.4 / 3, 0.4 / 3])
    )


@FAST
@given(constant=st.sampled_from(CONSTANTS[:4] + [-1e4]), margin=st.sampled_from([0.0, 2.0]))
def test_ldr_normalization_of_constant_rows(constant, margin):
    """softplus(z) / mean softplus(z) is 1 for a constant row, even where softplus underflows."""
    logits = torch.full((2, 4), constant, requires_grad=True)
    labels = torch.tensor([0, 3])
    loss = ldr_kl_loss(logits, labels, margin=margin, reduction="none")
    delta = margin * (1 - torch.nn.functional.one_hot(labels, 4).float())
    expected = torch.logsumexp(delta, 1) - math.log(4)
    torch.testing.assert_close(loss.detach(), expected)
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()


@FAST
@given(offset=st.sampled_from([0.0, 1e3, -1e6]), seed=st.integers(0, 2**16))
def test_group_advantages_constant_and_offset_groups(offset, seed):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(3, 4, generator=g, dtype=torch.float64)
    rewards[1] = 0.7
    adv = group_advantages(rewards + offset)
    assert (adv[1] == 0).all()
    torch.testing.assert_close(adv, group_advantages(rewards), rtol=1e-6, atol=1e-6)
    assert (group_advantages(torch.ones(2, 3), eps=0.0) == 0).all()
