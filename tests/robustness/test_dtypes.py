"""Issue 12, kind 5: dtypes. float16/bfloat16 inputs to every non-OT function give finite,
right values in the input dtype (computed in float32); labels of every integer dtype are
class ids (used as int64) and bool labels are rejected, everywhere labels are taken."""

import pytest
import torch
import torch.nn.functional as F
from _robustness_cases import CLASSIFICATION_LOSSES, FAST, reference
from hypothesis import given
from hypothesis import strategies as st

from regkit.data import asymmetric_noise, symmetric_noise
from regkit.divergences import DIVERGENCES, F_DPO_DIVERGENCES, f_divergence, f_dpo_loss, implicit_reward
from regkit.heads import ebv_loss
from regkit.losses import ALDRKLLoss, ELRLoss, l2_svm_objective, linear_cross_entropy
from regkit.losses.pass_at_n import coverage_gradient_factor
from regkit.regularizers import PSKD, cutmix, cutout, mixup, one_hot_targets
from regkit.rl import group_advantages, grpo_loss, masked_mean, reinforce_loss, token_entropy

HALF = [torch.float16, torch.bfloat16]
TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
INTEGER_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


def close_in(value, expected, dtype):
    """Right to half precision; a true value beyond the dtype's range must be its rounding, inf."""
    assert value.dtype == dtype
    expected = expected.double()
    beyond = expected.abs() > torch.finfo(dtype).max
    assert (value[beyond].isinf() & (value[beyond].sign() == expected[beyond].sign())).all()
    assert torch.isfinite(value[~beyond]).all()
    torch.testing.assert_close(value[~beyond].double(), expected[~beyond], rtol=TOL[dtype], atol=TOL[dtype])


@FAST
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 30.0, 6e4]))
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", list(CLASSIFICATION_LOSSES))
def test_classification_losses_in_half_precision(name, dtype, seed, scale):
    fn = CLASSIFICATION_LOSSES[name]
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(4, 5, generator=g) * scale).clamp(-6e4, 6e4).to(dtype)
    labels = torch.randint(0, 5, (4,), generator=g)
    x = logits.clone().requires_grad_()
    value = fn(x, labels, reduction="none")
    value.sum().backward()
    close_in(value, reference(fn, logits, labels), dtype)
    # finite gradients, but where the true one is past the dtype's range (the squared hinge's at 6e4)
    exact = logits.double().requires_grad_()
    fn(exact, labels, reduction="none").sum().backward()
    beyond = exact.grad.abs() > torch.finfo(dtype).max
    assert x.grad.dtype == dtype and torch.isfinite(x.grad[~beyond]).all()


@pytest.mark.parametrize("dtype", HALF)
def test_stateful_losses_and_pskd_in_half_precision(dtype):
    g = torch.Generator().manual_seed(0)
    logits, labels, index = torch.randn(4, 3, generator=g), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 3])
    for make in (lambda: ALDRKLLoss(4, 3), lambda: ELRLoss(4, 3)):
        half, full = make(), make().double()
        close_in(half(logits.to(dtype), labels, index), full(logits.to(dtype).double(), labels, index), dtype)
        assert torch.isfinite(half.lam if isinstance(half, ALDRKLLoss) else half.targets).all()
    pskd = PSKD(4, 3, epochs=2)
    pskd.record(logits.to(dtype), index)
    pskd.end_epoch()
    assert torch.isfinite(pskd.targets(labels, index, 1)).all()


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_f_divergence_in_half_precision(divergence, dtype):
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(2, 3, 6, generator=g).to(dtype)
    value = f_divergence(p, q, divergence, input="logits")
    close_in(value, f_divergence(p.double(), q.double(), divergence, input="logits"), dtype)
    probs = f_divergence(p.float().softmax(-1).to(dtype), q.float().softmax(-1).to(dtype), divergence)
    assert probs.dtype == dtype and torch.isfinite(probs).all()


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("divergence", F_DPO_DIVERGENCES)
def test_f_dpo_in_half_precision(divergence, dtype):
    g = torch.Generator().manual_seed(2)
    logps = [(-torch.rand(5, generator=g) * 20).to(dtype) for _ in range(4)]
    close_in(
        f_dpo_loss(*logps, divergence=divergence),
        f_dpo_loss(*[x.double() for x in logps], divergence=divergence),
        dtype,
    )
    close_in(
        implicit_reward(logps[0], logps[2], divergence=divergence),
        implicit_reward(logps[0].double(), logps[2].double(), divergence=divergence),
        dtype,
    )


@pytest.mark.parametrize("dtype", HALF)
def test_rl_in_half_precision(dtype):
    g = torch.Generator().manual_seed(3)
    logps = (-torch.rand(2, 3, 4, generator=g) * 5).to(dtype)
    old = (logps.float() + 0.1 * torch.randn(2, 3, 4, generator=g)).to(dtype)
    rewards = torch.tensor([[1.0, 0.0, 1.0], [1000.0, 1000.5, 1001.0]]).to(dtype)
    mask = torch.rand(2, 3, 4, generator=g) < 0.7
    adv = group_advantages(rewards)
    close_in(adv, group_advantages(rewards.double()), dtype)
    close_in(grpo_loss(logps, old, adv, mask), grpo_loss(logps.double(), old.double(), adv.double(), mask), dtype)
    close_in(reinforce_loss(logps, rewards, mask), reinforce_loss(logps.double(), rewards.double(), mask), dtype)
    close_in(masked_mean(logps, mask), masked_mean(logps.double(), mask), dtype)
    logits = (torch.randn(2, 4, 50, generator=g) * 8).to(dtype)
    close_in(token_entropy(logits), token_entropy(logits.double()), dtype)
    p = torch.tensor([0.0, 1e-3, 0.5, 1.0]).to(dtype)
    close_in(coverage_gradient_factor(p, 4), coverage_gradient_factor(p.double(), 4), dtype)


@pytest.mark.parametrize("dtype", HALF)
def test_linear_cross_entropy_in_half_precision(dtype):
    g = torch.Generator().manual_seed(4)
    hidden, weight = torch.randn(6, 8, generator=g).to(dtype), torch.randn(10, 8, generator=g).to(dtype)
    labels = torch.randint(0, 10, (6,), generator=g)
    expected = F.cross_entropy(hidden.double() @ weight.double().T, labels)
    close_in(linear_cross_entropy(hidden, weight, labels, chunk_size=3), expected, dtype)


def label_takers():
    """Every public function that takes labels: name -> f(labels) for labels in [0, 3) of length 4."""
    g = torch.Generator().manual_seed(5)
    logits, x = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 1, 6, generator=g)
    index = torch.arange(4)
    takers = {
        name: (lambda y, fn=fn: fn(logits, y))
        for name, fn in CLASSIFICATION_LOSSES.items()
        if name != "soft_cross_entropy"
    }
    takers.update(
        {
            "ALDRKLLoss": lambda y: ALDRKLLoss(4, 3).double()(logits, y, index),
            "ELRLoss": lambda y: ELRLoss(4, 3).double()(logits, y, index),
            "linear_cross_entropy": lambda y: linear_cross_entropy(logits, torch.eye(3, dtype=torch.float64), y),
            "l2_svm_objective": lambda y: l2_svm_objective(logits, y, torch.eye(3, dtype=torch.float64)),
            "ebv_loss": lambda y: ebv_loss(logits, torch.eye(3, dtype=torch.float64), y),
            "one_hot_targets": lambda y: one_hot_targets(y, 3),
            "PSKD.targets": lambda y: PSKD(4, 3, epochs=2).targets(y, index, 1),
            "mixup": lambda y: mixup(x, y, 3, generator=torch.Generator().manual_seed(0))[1],
            "cutmix": lambda y: cutmix(x, y, 3, generator=torch.Generator().manual_seed(0))[1],
            "cutout": lambda y: cutout(x, y, 3, generator=torch.Generator().manual_seed(0))[1],
            "symmetric_noise": lambda y: symmetric_noise(y, 0.5, 3, generator=torch.Generator().manual_seed(0))[0],
            "asymmetric_noise": lambda y: asymmetric_noise(y, 0.5, 3, generator=torch.Generator().manual_seed(0))[0],
        }
    )
    return takers


LABEL_TAKERS = label_takers()


@pytest.mark.parametrize("name", list(LABEL_TAKERS))
def test_every_integer_label_dtype_is_class_ids_and_bool_is_rejected(name):
    fn = LABEL_TAKERS[name]
    labels = torch.tensor([1, 2, 0, 1])
    expected = fn(labels)
    for dtype in INTEGER_DTYPES:
        torch.testing.assert_close(fn(labels.to(dtype)), expected)
    with pytest.raises(ValueError, match=r"(labels|targets).*bool"):
        fn(torch.tensor([True, False, True, True]))
    with pytest.raises(ValueError, match="labels|targets"):
        fn(labels.double())


def test_uint8_index_is_an_index_not_a_mask():
    logits, labels = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 1])
    for make in (lambda: ALDRKLLoss(4, 3).double(), lambda: ELRLoss(4, 3).double()):
        a, b = make(), make()
        torch.testing.assert_close(
            a(logits, labels, torch.tensor([2, 3], dtype=torch.uint8)), b(logits, labels, torch.tensor([2, 3]))
        )
        state = "lam" if isinstance(a, ALDRKLLoss) else "targets"
        torch.testing.assert_close(getattr(a, state), getattr(b, state))
