"""Issue 12, kind 3: exponent overflow. Log-ratios and logits far beyond exp's range go to
every non-OT function that exponentiates them: never NaN, and the right value (or its
float rounding, ±inf, where the true value is beyond the float range)."""

import math

import pytest
import torch
import torch.nn.functional as F
from _robustness_cases import CLASSIFICATION_LOSSES, FAST
from hypothesis import given
from hypothesis import strategies as st

from regkit.divergences import F_DPO_DIVERGENCES, f_dpo_loss, implicit_reward
from regkit.losses import linear_cross_entropy
from regkit.rl import grpo_loss, token_entropy

BIG = st.floats(-1e4, 1e4, allow_nan=False)


@FAST
@given(chosen=BIG, rejected=BIG, reference=st.floats(-50, 0))
@pytest.mark.parametrize("divergence", F_DPO_DIVERGENCES)
def test_f_dpo_is_never_nan(divergence, chosen, rejected, reference):
    c = torch.tensor([chosen], requires_grad=True)
    r = torch.tensor([rejected], requires_grad=True)
    ref = torch.tensor([reference])
    loss = f_dpo_loss(c, r, ref, ref, divergence=divergence)
    loss.backward()
    assert not loss.isnan() and loss >= 0
    assert not c.grad.isnan().any() and not r.grad.isnan().any()
    assert not implicit_reward(c.detach(), ref, divergence=divergence).isnan().any()
    # exact where it is representable: compare with float64 evaluation
    exact = f_dpo_loss(c.detach().double(), r.detach().double(), ref.double(), ref.double(), divergence=divergence)
    if math.isfinite(float(exact)) and float(exact) < 1e30:
        assert loss.item() == pytest.approx(float(exact), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("divergence", F_DPO_DIVERGENCES)
@pytest.mark.parametrize("log_ratio", [-1e4, -200.0, -100.0, 0.0, 100.0, 1e4])
def test_f_dpo_equal_log_ratios_give_log_2(divergence, log_ratio):
    x = torch.tensor([log_ratio])
    loss = f_dpo_loss(x, x, torch.zeros(1), torch.zeros(1), divergence=divergence)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)


@FAST
@given(log_ratio=st.floats(-1e4, 1e4), advantage=st.floats(0, 10), seed=st.integers(0, 2**16))
def test_grpo_ratio_overflow_with_non_negative_advantage(log_ratio, advantage, seed):
    logps = torch.full((1, 1, 2), log_ratio - 1.0, requires_grad=True)
    old = torch.full((1, 1, 2), -1.0)
    loss = grpo_loss(logps, old, torch.tensor([[advantage]]), torch.ones(1, 1, 2, dtype=torch.bool))
    loss.backward()
    expected = -advantage * math.exp(min(log_ratio, math.log1p(0.2)))
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-30)
    assert torch.isfinite(logps.grad).all()


def test_grpo_negative_advantage_overflow_is_inf_not_nan():
    loss = grpo_loss(torch.full((1, 1, 1), 100.0), torch.zeros(1, 1, 1), -torch.ones(1, 1), torch.ones(1, 1, 1))
    assert loss.item() == math.inf


@FAST
@given(scale=st.sampled_from([1e2, 1e4, 1e30]), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("name", list(CLASSIFICATION_LOSSES))
def test_classification_losses_with_huge_logits(name, scale, seed):
    fn = CLASSIFICATION_LOSSES[name]
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(4, 3, generator=g) * scale).requires_grad_()
    labels = torch.randint(0, 3, (4,), generator=g)
    loss = fn(logits, labels)
    loss.backward()
    assert not loss.isnan() and not logits.grad.isnan().any()


def test_token_entropy_and_linear_cross_entropy_with_huge_scores():
    logits = torch.tensor([[3e38, -3e38, 0.0], [1e30, 1e30, -1e30]])
    torch.testing.assert_close(token_entropy(logits), torch.tensor(math.log(2) / 2))
    hidden = torch.tensor([[1e3, -1e3], [5e2, 5e2]])
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 2])
    torch.testing.assert_close(
        linear_cross_entropy(hidden, weight, labels, chunk_size=1), F.cross_entropy(hidden @ weight.T, labels)
    )
