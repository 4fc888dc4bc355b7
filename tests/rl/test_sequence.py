"""Token and sequence log-probabilities against an explicit softmax."""

import math

import pytest
import torch

from regkit.rl import sequence_logps, token_logps


def test_token_logps_against_an_explicit_softmax():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, dtype=torch.float64)
    tokens = torch.randint(0, 5, (3, 4))
    got = token_logps(logits, tokens)
    for i in range(3):
        for t in range(4):
            row = logits[i, t]
            expected = float(row[tokens[i, t]]) - math.log(sum(math.exp(float(v)) for v in row))
            assert got[i, t].item() == pytest.approx(expected, abs=1e-12)


def test_sequence_logps_is_the_log_of_the_product_of_probabilities():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, dtype=torch.float64)
    tokens = torch.tensor([[0, 3, 1], [2, 2, 0]])
    probs = logits.softmax(-1)
    for i in range(2):
        product = 1.0
        for t in range(3):
            product *= float(probs[i, t, tokens[i, t]])
        assert sequence_logps(logits, tokens)[i].item() == pytest.approx(math.log(product), abs=1e-12)
    # a padded position contributes nothing, whatever its logits hold
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    logits[0, 2] = float("nan")
    masked = sequence_logps(logits, tokens, mask)
    assert torch.isfinite(masked).all()
    assert masked[0].item() == pytest.approx(float(probs[0, 0, 0].log() + probs[0, 1, 3].log()), abs=1e-12)


def test_sequence_logps_of_every_sequence_sum_to_one():
    torch.manual_seed(2)
    logits = torch.randn(1, 2, 3).expand(9, 2, 3)  # the same distribution at each position for every sequence
    tokens = torch.tensor([[a, b] for a in range(3) for b in range(3)])
    assert float(sequence_logps(logits, tokens).exp().sum()) == pytest.approx(1.0, abs=1e-6)


def test_token_logps_half_precision_and_gradient():
    logits = torch.randn(2, 3, 4, dtype=torch.bfloat16, requires_grad=True)
    tokens = torch.zeros(2, 3, dtype=torch.int32)
    out = token_logps(logits, tokens)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert logits.grad is not None


@pytest.mark.parametrize("tokens", [torch.tensor([[0, 5]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0, 1])])
def test_token_logps_rejects_bad_tokens(tokens):
    with pytest.raises(ValueError, match="tokens"):
        token_logps(torch.randn(1, 2, 5), tokens)
