"""AEPO: the REINFORCE term, the temperature switch, token entropy and the objective."""

import numpy as np
import pytest
import torch

from regkit.rl import (
    aepo_loss,
    aepo_temperature,
    grpo_loss,
    reinforce_loss,
    token_entropy,
)


def test_reinforce_term_and_temperature_switch():
    logps = -torch.rand(4, 3, dtype=torch.float64)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    expected = -(logps[0, :2].sum() + logps[2, 0]) / mask.sum()
    torch.testing.assert_close(reinforce_loss(logps, rewards, mask), expected)
    assert aepo_temperature(0.3, 0.5) == 1.2 and aepo_temperature(0.7, 0.5) == 0.8


def test_token_entropy_of_uniform_and_onehot():
    logits = torch.stack([torch.zeros(8), torch.tensor([50.0] + [0.0] * 7)])
    torch.testing.assert_close(token_entropy(logits[:1]), torch.tensor(np.log(8), dtype=torch.float32))
    assert float(token_entropy(logits[1:])) < 1e-15


def test_aepo_loss_is_grpo_plus_alpha_reinforce():
    torch.manual_seed(3)
    logps = torch.randn(2, 3, 4, dtype=torch.float64)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    advantages = torch.randn(2, 3, dtype=torch.float64)
    reg_logps = torch.randn(2, 3, 4, dtype=torch.float64)
    rewards = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    got = aepo_loss(logps, logps, advantages, mask, reg_logps, rewards, mask, alpha=0.5)
    # at ratio 1 the GRPO surrogate is -mean_t A_i; the REINFORCE term is -mean_t R_i log π
    grpo = -float(advantages[..., None].expand(2, 3, 4).mean())
    reinforce = -float((rewards[..., None] * reg_logps).mean())
    assert float(got) == pytest.approx(grpo + 0.5 * reinforce, abs=1e-12)
    assert float(got) == pytest.approx(
        float(grpo_loss(logps, logps, advantages, mask) + 0.5 * reinforce_loss(reg_logps, rewards, mask)), abs=1e-12
    )
    with pytest.raises(ValueError, match="alpha"):
        aepo_loss(logps, logps, advantages, mask, reg_logps, rewards, mask, alpha=-1.0)
