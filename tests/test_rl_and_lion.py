"""GRPO, AEPO and Lion against independent computations."""

import numpy as np
import pytest
import torch

from regkit.optim import Lion
from regkit.rl import aepo_temperature, group_advantages, grpo_loss, reinforce_loss, token_entropy


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


def reference_lion(params, grads, lr, beta1, beta2, wd):
    """The update of Chen et al. (2023), Program 1, in NumPy."""
    m = [np.zeros_like(p) for p in params]
    out = []
    for step_grads in grads:
        for i, (p, g) in enumerate(zip(params, step_grads)):
            update = np.sign(beta1 * m[i] + (1 - beta1) * g)
            params[i] = p - lr * (update + wd * p)
            m[i] = beta2 * m[i] + (1 - beta2) * g
        out.append([p.copy() for p in params])
    return out


@pytest.mark.parametrize("wd", [0.0, 0.5])
def test_lion_matches_the_published_update_step_by_step(wd):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 6, generator=g, dtype=torch.float64), torch.randn(20, generator=g, dtype=torch.float64)
    x = torch.randn(6, generator=g, dtype=torch.float64).requires_grad_()
    x0 = x.detach().numpy().copy()
    opt = Lion([x], lr=0.01, betas=(0.9, 0.99), weight_decay=wd)
    ours, grads = [], []
    for _ in range(30):
        opt.zero_grad()
        (0.5 * (a @ x - b).pow(2).sum()).backward()
        grads.append([x.grad.numpy().copy()])
        opt.step()
        ours.append(x.detach().numpy().copy())
    # the gradients Lion saw, replayed through the reference from the same start
    theirs = reference_lion([x0], grads, 0.01, 0.9, 0.99, wd)
    for mine, ref in zip(ours, theirs):
        np.testing.assert_allclose(mine, ref[0], rtol=0, atol=1e-12)


def test_lion_state_is_one_buffer_per_parameter():
    model = torch.nn.Linear(5, 3)
    opt = Lion(model.parameters(), lr=1e-3)
    model(torch.randn(2, 5)).sum().backward()
    opt.step()
    assert all(len(s) == 1 for s in opt.state.values())


@pytest.mark.parametrize("kwargs", [{"lr": 0.0}, {"lr": -1.0}, {"betas": (1.0, 0.9)}, {"weight_decay": -0.1}])
def test_lion_bad_input(kwargs):
    with pytest.raises(ValueError):
        Lion([torch.zeros(2, requires_grad=True)], **{"lr": 1e-3, **kwargs})
