"""Issue 12, rows 2–9, 11, 13 and 15: each failing input with its right value."""

import math

import pytest
import torch
import torch.nn.functional as F

from regkit.divergences import DIVERGENCES, f_divergence, f_dpo_loss
from regkit.losses import ALDRKLLoss, focal_loss, ldr_kl_loss, linear_cross_entropy, sce_loss
from regkit.rl import grpo_loss, reinforce_loss, token_entropy

INF = math.inf
MASKED_P = [0.5, 1.0, 2.0, -INF]
MASKED_Q = [0.2, 1.5, 1.0, -INF]


def test_row2_token_entropy_masked_and_float16():
    assert float(token_entropy(torch.tensor([[0.0, 0.0, -INF]]))) == pytest.approx(0.693147, abs=1e-6)
    value = token_entropy(torch.tensor([[65504.0, -65504.0]], dtype=torch.float16))
    assert value.dtype == torch.float16 and float(value) == 0.0


def test_row3_chi2_with_a_zero_entry_and_masked_logits():
    p = torch.tensor([0.5, 0.5, 0.0])
    for divergence in DIVERGENCES:
        assert float(f_divergence(p, p, divergence)) == 0.0
    value = f_divergence(torch.tensor(MASKED_P), torch.tensor(MASKED_Q), "chi2", input="logits")
    assert float(value) == pytest.approx(0.459965, abs=1e-6)


@pytest.mark.parametrize(
    "divergence, expected",
    [
        ("reverse_kl", [-0.035761, -0.243940, 0.279701, 0.0]),
        ("js", [-0.010354, -0.129055, 0.139409, 0.0]),
    ],
)
def test_row4_masked_logits_gradients(divergence, expected):
    logits = torch.tensor(MASKED_P, requires_grad=True)
    f_divergence(logits, torch.tensor(MASKED_Q), divergence, input="logits").backward()
    torch.testing.assert_close(logits.grad, torch.tensor(expected), atol=1e-6, rtol=0)


def test_row5_padded_positions_never_reach_grpo_or_reinforce():
    logps = torch.tensor([[[-1.0, -2.0, -INF]]], requires_grad=True)
    loss = grpo_loss(logps, torch.tensor([[[-1.1, -2.0, -INF]]]), torch.tensor([[1.0]]), torch.tensor([[[1, 1, 0]]]))
    assert loss.item() == pytest.approx(-1.052585, abs=1e-6)
    loss.backward()
    assert torch.isfinite(logps.grad).all() and logps.grad[0, 0, 2] == 0
    logps = torch.tensor([[-1.0, -INF]], requires_grad=True)
    loss = reinforce_loss(logps, torch.tensor([1.0]), torch.tensor([[1, 0]]))
    assert loss.item() == 1.0
    loss.backward()
    assert logps.grad.tolist() == [[-1.0, 0.0]]


def test_row6_all_minus_inf_tile_does_not_depend_on_chunk_size():
    g = torch.Generator().manual_seed(6)
    hidden, weight = torch.randn(4, 8, generator=g), torch.randn(16, 8, generator=g)
    labels = torch.randint(8, 16, (4,), generator=g)
    bias = torch.zeros(16)
    bias[:8] = -INF
    expected = F.cross_entropy(hidden @ weight.T + bias, labels)
    for chunk_size in (8, 3, 4096):
        value = linear_cross_entropy(hidden, weight, labels, bias=bias, chunk_size=chunk_size, token_chunk_size=2)
        torch.testing.assert_close(value, expected)


def test_row7_f_dpo_links_cannot_overflow():
    zero = torch.zeros(1)

    def loss(chosen, rejected, divergence):
        return float(f_dpo_loss(torch.tensor([chosen]), torch.tensor([rejected]), zero, zero, divergence=divergence))

    assert loss(-100.0, -100.0, "forward_kl") == pytest.approx(math.log(2), abs=1e-6)
    assert loss(-100.0, -101.0, "forward_kl") == pytest.approx(0.0, abs=1e-6)
    assert loss(-200.0, -200.0, "alpha") == pytest.approx(math.log(2), abs=1e-6)
    assert loss(-200.0, -201.0, "alpha") == pytest.approx(0.0, abs=1e-6)


def test_row8_grpo_ratio_overflow_with_zero_advantage():
    logps = torch.tensor([[[100.0]]], requires_grad=True)
    loss = grpo_loss(logps, torch.zeros(1, 1, 1), torch.zeros(1, 1), torch.ones(1, 1, 1, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert logps.grad.item() == 0.0


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.75])
def test_row9_focal_gradient_at_a_saturated_logit(gamma):
    logits = torch.tensor([[100.0, 0.0]], requires_grad=True)
    loss = focal_loss(logits, torch.tensor([0]), gamma=gamma)
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.tolist() == [[0.0, 0.0]]


def test_row11_uint8_labels_are_class_ids():
    g = torch.Generator().manual_seed(11)
    hidden, weight = torch.randn(5, 5, generator=g), torch.randn(5, 5, generator=g)
    labels = torch.tensor([1, 2, 3, 4, 1], dtype=torch.uint8)
    expected = F.cross_entropy(hidden @ weight.T, labels.long())
    torch.testing.assert_close(linear_cross_entropy(hidden, weight, labels), expected)
    with pytest.raises(ValueError, match="labels.*bool"):
        linear_cross_entropy(hidden, weight, labels.bool())


def test_row13_aldr_state_is_not_poisoned_by_an_all_zero_row():
    criterion = ALDRKLLoss(4, 3)
    first = criterion(torch.tensor([[0.3, 0.1, -0.2], [0.0, 0.0, 0.0]]), torch.tensor([0, 2]), torch.tensor([0, 1]))
    assert torch.isfinite(first) and torch.isfinite(criterion.lam).all()
    value = criterion(torch.tensor([[1.0, -0.5, 0.2]]), torch.tensor([0]), torch.tensor([1]))
    assert float(value) == pytest.approx(-0.484736, abs=1e-6)
    fresh = ALDRKLLoss(4, 3)(torch.tensor([[1.0, -0.5, 0.2]]), torch.tensor([0]), torch.tensor([1]))
    assert float(value) == pytest.approx(float(fresh), abs=1e-7)


def test_row15_unchecked_arguments_raise_value_errors_naming_them():
    logits, labels = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="reduction.*'bogus'.*none, mean, sum"):
        ldr_kl_loss(logits, labels, reduction="bogus")
    for clamp in (0, 2, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"clamp must be a number in \(0, 1\)"):
            sce_loss(logits, labels, clamp=clamp)
