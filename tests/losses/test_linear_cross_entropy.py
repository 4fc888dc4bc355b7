"""linear_cross_entropy against F.cross_entropy on the materialized logits."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from regkit.losses import LinearCrossEntropyStats, linear_cross_entropy


def problem(n, vocab, dim, *, dtype=torch.float64, bias=False, seed=0, ignore=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, dim, generator=g, dtype=dtype).requires_grad_()
    weight = (torch.randn(vocab, dim, generator=g, dtype=dtype) / dim**0.5).requires_grad_()
    b = torch.randn(vocab, generator=g, dtype=dtype).requires_grad_() if bias else None
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[:ignore] = -100
    return hidden, weight, b, labels


def loss_and_grads(loss, *tensors):
    grads = torch.autograd.grad(loss, [t for t in tensors if t is not None])
    return loss.detach(), grads


def reference(hidden, weight, bias, labels, reduction, z_loss=0.0):
    logits = hidden @ weight.T + (0 if bias is None else bias)
    losses = F.cross_entropy(logits, labels, reduction="none")
    if z_loss:
        losses = losses + z_loss * torch.where(labels != -100, logits.logsumexp(1) ** 2, 0.0)
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / (labels != -100).sum()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    vocab=st.integers(2, 70),
    dim=st.integers(1, 9),
    chunk=st.integers(1, 32),
    token_chunk=st.integers(1, 16),
    bias=st.booleans(),
    ignore=st.integers(0, 5),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    z_loss=st.sampled_from([0.0, 1e-2]),
)
def test_matches_materialized_cross_entropy(n, vocab, dim, chunk, token_chunk, bias, ignore, reduction, z_loss):
    hidden, weight, b, labels = problem(n, vocab, dim, bias=bias, ignore=min(ignore, n - 1))
    ours = linear_cross_entropy(
        hidden,
        weight,
        labels,
        bias=b,
        reduction=reduction,
        chunk_size=chunk,
        token_chunk_size=token_chunk,
        z_loss=z_loss,
        filter_eps=None,
    )
    ref = reference(hidden, weight, b, labels, reduction, z_loss)
    weights = torch.randn_like(ref)  # a random cotangent also checks reduction="none" row by row
    ours_value, ours_grads = loss_and_grads((ours * weights).sum(), hidden, weight, b)
    ref_value, ref_grads = loss_and_grads((ref * weights).sum(), hidden, weight, b)
    torch.testing.assert_close(ours, ref.detach(), rtol=1e-10, atol=1e-10)
    for mine, theirs in zip(ours_grads, ref_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-10)


def test_float32_at_scale_relative_error():
    hidden, weight, _, labels = problem(512, 8192, 64, dtype=torch.float32)
    ours, (gh, gw) = loss_and_grads(linear_cross_entropy(hidden, weight, labels, filter_eps=None), hidden, weight)
    ref, (rh, rw) = loss_and_grads(F.cross_entropy(hidden @ weight.T, labels), hidden, weight)
    assert abs(float(ours - ref)) / float(ref) < 1e-5
    assert float((gh - rh).norm() / rh.norm()) < 1e-5
    assert float((gw - rw).norm() / rw.norm()) < 1e-5


def test_gradcheck_float64():
    hidden, weight, b, labels = problem(6, 11, 3, bias=True, ignore=1)
    fn = lambda h, w, bb: linear_cross_entropy(
        h, w, labels, bias=bb, chunk_size=4, token_chunk_size=4, z_loss=0.1, filter_eps=None
    )
    assert torch.autograd.gradcheck(fn, (hidden, weight, b))


def test_bfloat16_within_tolerance():
    hidden, weight, _, labels = problem(64, 300, 16, dtype=torch.float32)
    h16, w16 = hidden.detach().bfloat16().requires_grad_(), weight.detach().bfloat16().requires_grad_()
    ours, (gh, gw) = loss_and_grads(linear_cross_entropy(h16, w16, labels, chunk_size=64), h16, w16)
    ref, (rh, rw) = loss_and_grads(F.cross_entropy(h16.float() @ w16.float().T, labels), h16, w16)
    assert ours.dtype == torch.bfloat16 and gh.dtype == torch.bfloat16
    assert abs(float(ours) - float(ref)) / float(ref) < 1e-2
    assert float((gh.float() - rh.float()).norm() / rh.float().norm()) < 2e-2
    assert float((gw.float() - rw.float()).norm() / rw.float().norm()) < 2e-2


def test_invariant_to_chunk_sizes():
    hidden, weight, b, labels = problem(37, 101, 5, bias=True)
    results = []
    for chunk, token_chunk in [(1, 1), (7, 3), (64, 37), (1000, 1000)]:
        loss = linear_cross_entropy(hidden, weight, labels, bias=b, chunk_size=chunk, token_chunk_size=token_chunk)
        results.append(loss_and_grads(loss, hidden, weight, b))
    for value, grads in results[1:]:
        torch.testing.assert_close(value, results[0][0])
        for g, g0 in zip(grads, results[0][1]):
            torch.testing.assert_close(g, g0)


def test_leading_dimensions_like_a_sequence_batch():
    hidden, weight, _, labels = problem(24, 50, 4)
    ours = linear_cross_entropy(hidden.view(2, 12, 4), weight, labels.view(2, 12), reduction="none")
    assert ours.shape == (2, 12)
    torch.testing.assert_close(ours.reshape(-1), reference(hidden, weight, None, labels, "none"))


def test_ignored_targets_get_no_gradient():
    hidden, weight, _, labels = problem(10, 30, 4, ignore=4)
    (grad_h,) = torch.autograd.grad(linear_cross_entropy(hidden, weight, labels), hidden)
    assert torch.all(grad_h[:4] == 0) and torch.all(grad_h[4:].abs().sum(1) > 0)


def test_gradient_filtering_skips_only_negligible_tiles():
    # one dominant class per token: most tiles hold only tiny softmax values
    hidden, weight, _, labels = problem(64, 256, 8)
    with torch.no_grad():
        weight[:, :] = torch.eye(256, 8, dtype=weight.dtype) * 40
        hidden[:, :] = torch.nn.functional.one_hot(torch.arange(64) % 8, 8).double()
    labels = torch.arange(64) % 8
    stats = LinearCrossEntropyStats()
    filtered = torch.autograd.grad(
        linear_cross_entropy(hidden, weight, labels, chunk_size=16, token_chunk_size=16, filter_eps=1e-12, stats=stats),
        [hidden, weight],
    )
    exact = torch.autograd.grad(linear_cross_entropy(hidden, weight, labels, filter_eps=None), [hidden, weight])
    assert stats.tiles == 16 * 4 and 0.9 < stats.skipped_fraction < 1.0
    for f, e in zip(filtered, exact):
        assert float((f - e).abs().max()) < 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden": torch.randn(4, 3)}, "hidden"),
        ({"labels": torch.tensor([0, 1, 2, 9])}, "labels"),
        ({"labels": torch.tensor([0, 1, 2, -1])}, "labels"),
        ({"labels": torch.tensor([0.0, 1.0, 2.0, 3.0])}, "labels"),
        ({"labels": torch.tensor([0, 1, 2])}, "labels"),
        ({"bias": torch.zeros(3)}, "bias"),
        ({"reduction": "avg"}, "reduction"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"hidden": torch.randn(4, 5), "weight": torch.randn(7, 5), "labels": torch.tensor([0, 1, 2, -100])}
    args.update(kwargs)
    hidden, weight, labels = args.pop("hidden"), args.pop("weight"), args.pop("labels")
    with pytest.raises(ValueError, match=match):
        linear_cross_entropy(hidden, weight, labels, **args)
