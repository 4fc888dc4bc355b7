"""Issue 12, kind 2: masked (−inf) logits, zero probabilities and padded positions, fed to
every non-OT function that takes logits, probabilities, log-probabilities or a mask.

Right answer: a masked entry is a removed entry (value and gradient of the rest equal the
problem without it, its own gradient is 0); a padded position never reaches the value or
the gradient, whatever it holds (NaN, ±inf)."""

import math

import pytest
import torch
import torch.nn.functional as F
from _robustness_cases import CLASSIFICATION_LOSSES, FAST, MASK_IS_REMOVAL
from hypothesis import given
from hypothesis import strategies as st

from regkit.divergences import DIVERGENCES, f_divergence
from regkit.losses import linear_cross_entropy, log_stablemax
from regkit.rl import grpo_loss, masked_mean, reinforce_loss, token_entropy

GARBAGE = [math.nan, math.inf, -math.inf, 1e30]


def masked_problem(seed, b=3, k=5):
    """Logits (B, K) with the last two classes masked in every row; labels in the unmasked ones."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, generator=g, dtype=torch.float64) * 3
    logits[:, -2:] = -math.inf
    return logits, torch.randint(0, k - 2, (b,), generator=g)


@FAST
@given(seed=st.integers(0, 2**16))
@pytest.mark.parametrize("name", list(CLASSIFICATION_LOSSES))
def test_classification_losses_with_masked_classes(name, seed):
    fn = CLASSIFICATION_LOSSES[name]
    logits, labels = masked_problem(seed)
    if name == "elr_loss":  # ELR's clamped softmax has no masked classes: a clear error, by design
        with pytest.raises(ValueError, match="logits"):
            fn(logits, labels)
        return
    logits.requires_grad_()
    loss = fn(logits, labels, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert (logits.grad[:, -2:] == 0).all()
    if name in MASK_IS_REMOVAL:
        kept = logits.detach()[:, :-2].clone().requires_grad_()
        reduced = fn(kept, labels, reduction="sum")
        reduced.backward()
        torch.testing.assert_close(loss.detach(), reduced.detach())
        torch.testing.assert_close(logits.grad[:, :-2], kept.grad)


def test_log_stablemax_masked_entry_is_removed():
    z = torch.tensor([0.3, -1.2, 2.0, -math.inf], dtype=torch.float64)
    torch.testing.assert_close(log_stablemax(z)[:3], log_stablemax(z[:3]))
    assert log_stablemax(z)[3] == -math.inf


@FAST
@given(seed=st.integers(0, 2**16), masked=st.integers(0, 3))
@pytest.mark.parametrize("input", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_f_divergence_masked_entry_equals_the_reduced_problem(divergence, input, seed, masked):
    g = torch.Generator().manual_seed(seed)
    logits_p, logits_q = torch.randn(2, 4, generator=g, dtype=torch.float64)
    logits_p[masked] = logits_q[masked] = -math.inf
    keep = [i for i in range(4) if i != masked]

    def as_input(z):
        return {"logits": z, "log_probs": z.log_softmax(-1), "probs": z.softmax(-1)}[input].detach()

    p_full, p_kept = as_input(logits_p).requires_grad_(), as_input(logits_p[keep]).requires_grad_()
    full = f_divergence(p_full, as_input(logits_q), divergence, input=input)
    kept = f_divergence(p_kept, as_input(logits_q[keep]), divergence, input=input)
    full.backward()
    kept.backward()
    torch.testing.assert_close(full.detach(), kept.detach())
    torch.testing.assert_close(p_full.grad[keep], p_kept.grad)
    assert p_full.grad[masked] == 0


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_f_divergence_support_mismatch_is_its_true_value(divergence):
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.5, 0.0, 0.5])
    value = float(f_divergence(p, q, divergence))
    finite = {"js": 2 * math.log(2) * 0.5, "total_variation": 0.5, "alpha": 0.5 / 0.5 + 0.5 / 0.5}
    if divergence in finite:
        assert value == pytest.approx(finite[divergence])
    else:
        assert value == math.inf


@FAST
@given(seed=st.integers(0, 2**16), garbage=st.sampled_from(GARBAGE))
def test_token_entropy_masked_vocabulary_and_padded_positions(seed, garbage):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, generator=g, dtype=torch.float64)
    logits[..., -2:] = -math.inf
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    padded = logits.clone()
    padded[~mask] = garbage
    padded.requires_grad_()
    value = token_entropy(padded, mask)
    value.backward()
    p = logits[mask][:, :-2].softmax(-1)
    expected = -(p * p.log()).sum(-1).mean()
    torch.testing.assert_close(value.detach(), expected)
    assert torch.isfinite(padded.grad).all() and (padded.grad[~mask] == 0).all() and (padded.grad[..., -2:] == 0).all()


@FAST
@given(seed=st.integers(0, 2**16), garbage=st.sampled_from(GARBAGE), old_garbage=st.sampled_from(GARBAGE))
def test_rl_losses_never_see_padded_positions(seed, garbage, old_garbage):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(2, 3, 4, generator=g, dtype=torch.float64) * 3
    old = logps + 0.3 * torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    advantages = torch.randn(2, 3, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 3, 4, generator=g) < 0.6
    mask[0, 0, 0] = True
    dirty, dirty_old = logps.clone(), old.clone()
    dirty[~mask], dirty_old[~mask] = garbage, old_garbage
    for fn, args in ((grpo_loss, (dirty_old, advantages)), (reinforce_loss, (advantages,))):
        clean_x = logps.clone().requires_grad_()
        dirty_x = dirty.clone().requires_grad_()
        clean_args = (old, advantages) if fn is grpo_loss else args
        clean = fn(clean_x, *clean_args, mask)
        value = fn(dirty_x, *args, mask)
        (clean + value).backward()
        torch.testing.assert_close(value.detach(), clean.detach())
        assert (dirty_x.grad[~mask] == 0).all()
        torch.testing.assert_close(dirty_x.grad[mask], clean_x.grad[mask])
    values = torch.where(mask, logps, garbage)
    torch.testing.assert_close(masked_mean(values, mask), logps[mask].mean())


@FAST
@given(seed=st.integers(0, 2**16), chunk=st.integers(1, 9), token_chunk=st.integers(1, 5))
def test_linear_cross_entropy_masked_vocabulary_any_tiling(seed, chunk, token_chunk):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(12, dtype=torch.float64)
    masked = torch.randperm(12, generator=g)[:6]
    bias[masked] = -math.inf
    allowed = torch.tensor([v for v in range(12) if v not in masked.tolist()])
    labels = allowed[torch.randint(0, 6, (5,), generator=g)]
    ours = linear_cross_entropy(
        hidden, weight, labels, bias=bias, chunk_size=chunk, token_chunk_size=token_chunk, filter_eps=None
    )
    grads = torch.autograd.grad(ours, (hidden, weight))
    expected = F.cross_entropy(hidden @ weight.T + bias, labels)
    torch.testing.assert_close(ours, expected)
    for got, want in zip(grads, torch.autograd.grad(expected, (hidden, weight))):
        torch.testing.assert_close(got, want)
