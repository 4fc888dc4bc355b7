"""Lion against the published update rule."""

import numpy as np
import pytest
import torch

from regkit.optim import Lion


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
