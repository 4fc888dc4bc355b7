"""StableMax and its cross-entropy: a distribution, monotone, the formula, no softmax collapse."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regkit.losses import stablemax, stablemax_cross_entropy

logit_rows = arrays("float64", st.integers(2, 12), elements=st.floats(-1e6, 1e6))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(logit_rows)
def test_stablemax_is_a_distribution(row):
    p = stablemax(torch.from_numpy(row))
    assert torch.all(p > 0)
    assert abs(float(p.sum()) - 1) < 1e-12


# logits within ±1e3: beyond that a probability can round to exactly 1 in float64 and stop moving
moderate_rows = arrays("float64", st.integers(2, 12), elements=st.floats(-1e3, 1e3))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(moderate_rows, st.data())
def test_stablemax_is_monotone_in_each_logit(row, data):
    z = torch.from_numpy(row)
    i = data.draw(st.integers(0, len(row) - 1))
    bumped = z.clone()
    bumped[i] += data.draw(st.floats(1e-3, 10.0))
    assert stablemax(bumped)[i] > stablemax(z)[i]
    others = torch.arange(len(row)) != i
    assert torch.all(stablemax(bumped)[others] <= stablemax(z)[others])


def test_stablemax_matches_the_formula():
    z = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 2.0]], dtype=torch.float64)
    s = torch.tensor([1 / 4, 1 / 1.5, 1.0, 1.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(stablemax(z), s[None] / s.sum())
    loss = stablemax_cross_entropy(z, torch.tensor([3]))
    torch.testing.assert_close(loss, -torch.log(s[3] / s.sum()))


def test_stablemax_loss_does_not_collapse_where_softmax_does():
    logits = torch.tensor([[60.0, 0.0, -5.0]])
    labels = torch.tensor([0])
    softmax_loss = F.cross_entropy(logits, labels)
    assert float(softmax_loss) == 0.0  # float32 absorption: Softmax Collapse
    assert float(stablemax_cross_entropy(logits, labels)) > 0


@pytest.mark.parametrize(
    "fn",
    [
        lambda: stablemax_cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, -1])),
        lambda: stablemax_cross_entropy(torch.randn(3), torch.tensor([0, 1, 1])),
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError):
        fn()
