"""GRPO: group-standardized advantages and the clipped objective against a loop."""

import numpy as np
import torch

from regkit.rl import group_advantages, grpo_loss


def test_group_advantages_standardize_each_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(rewards)
    std = np.std([1, 0, 0, 1], ddof=1)
    torch.testing.assert_close(adv[0], (rewards[0] - 0.5) / (std + 1e-6))
    assert torch.all(adv[1] == 0)


def test_grpo_loss_against_a_loop():
    g = torch.Generator().manual_seed(0)
    logps = -torch.rand(3, 4, 5, generator=g, dtype=torch.float64)
    old = logps + 0.3 * torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    adv = torch.randn(3, 4, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 4, 5, generator=g) > 0.3
    total, count = 0.0, 0
    for i in range(3):
        for j in range(4):
            for t in range(5):
                if mask[i, j, t]:
                    r = float(torch.exp(logps[i, j, t] - old[i, j, t]))
                    a = float(adv[i, j])
                    total += min(r * a, min(max(r, 0.8), 1.28) * a)
                    count += 1
    ours = grpo_loss(logps, old, adv, mask, clip_low=0.2, clip_high=0.28)
    assert abs(float(ours) + total / count) < 1e-12


def test_grpo_gradient_at_ratio_one_is_the_policy_gradient():
    logps = -torch.rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    adv = torch.randn(2, 3, dtype=torch.float64)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    (grad,) = torch.autograd.grad(grpo_loss(logps, logps.detach(), adv, mask), logps)
    torch.testing.assert_close(grad, -adv[..., None].expand(2, 3, 4) / 24)
