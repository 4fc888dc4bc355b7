"""SSO / target surrogates (regkit.solvers.sso) against SGD step for step, the least-squares projection of the
target-space step, autograd, and the majorization property."""

import math

import numpy as np
import pytest
import torch

from regkit.solvers import SolverResult, sso, target_surrogate


def _linear(params, inputs):
    return inputs @ params.reshape(inputs.shape[1], -1)


def _data(n=40, p=4, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, p, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=gen)
    return inputs, labels, torch.randn(p * k, generator=gen, dtype=torch.float64)


def _mlp(params, inputs):
    w1, b1, w2 = params[:12].reshape(4, 3), params[12:15], params[15:].reshape(3, 3)
    return torch.tanh(inputs @ w1 + b1) @ w2


@pytest.mark.parametrize("model", [_linear, _mlp])
def test_one_inner_step_is_sgd_step_for_step(model):
    inputs, labels, params0 = _data()
    if model is _mlp:
        params0 = torch.randn(24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy
    result = sso(
        model,
        loss,
        params0,
        inputs,
        labels,
        eta=0.3,
        inner_lr=0.5,
        inner_steps=1,
        outer_steps=8,
        batch_size=10,
        generator=torch.Generator().manual_seed(7),
    )
    gen = torch.Generator().manual_seed(7)
    params = params0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([params], lr=0.5)
    for step in range(8):
        full = loss(model(params, inputs), labels)
        assert result.objectives[step] == pytest.approx(float(full.detach()), rel=1e-12)
        indices = torch.randperm(40, generator=gen)[:10]
        optimizer.zero_grad()
        loss(model(params, inputs[indices]), labels[indices]).backward()
        optimizer.step()
    torch.testing.assert_close(result.solution, params.detach(), rtol=1e-12, atol=1e-12)
    assert isinstance(result, SolverResult) and result.n_iter == 8 and len(result.errors) == 9


@pytest.mark.parametrize(("inner_lr", "line_search"), [(0.05, False), (100.0, True)])
def test_many_inner_steps_project_the_target_step_by_least_squares(inner_lr, line_search):
    # linear model: argmin_θ g_t(θ) solves min ‖Xθ − (z_t − η ∇ℓ(z_t))‖², whatever the loss; the line search
    # starts from a step 1000x too large for plain gradient steps (which diverge with it, checked below)
    inputs, labels, params0 = _data(n=30)
    eta = 2.0
    result = sso(
        _linear,
        torch.nn.functional.cross_entropy,
        params0,
        inputs,
        labels,
        eta=eta,
        inner_lr=inner_lr,
        inner_steps=500,
        outer_steps=1,
        line_search=line_search,
    )
    if line_search:
        plain = sso(
            _linear,
            torch.nn.functional.cross_entropy,
            params0,
            inputs,
            labels,
            eta=eta,
            inner_lr=inner_lr,
            inner_steps=5,
            outer_steps=1,
        )
        assert plain.objectives[-1] > 1e3 * plain.objectives[0]
    logits = (inputs @ params0.reshape(4, 3)).numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    grad = (probs - np.eye(3)[labels.numpy()]) / 30  # ∇_z of the mean cross-entropy
    target = logits - eta * grad
    expected, *_ = np.linalg.lstsq(inputs.numpy(), target, rcond=None)
    np.testing.assert_allclose(result.solution.numpy(), expected.ravel(), rtol=1e-8, atol=1e-10)


def test_surrogate_value_gradient_and_majorization():
    gen = torch.Generator().manual_seed(3)
    labels = torch.randn(20, generator=gen, dtype=torch.float64)
    anchor = torch.randn(20, generator=gen, dtype=torch.float64)

    def loss(z):  # mean squared error: (2/n)-smooth in z, so η ≤ n/2 gives an upper bound
        return ((z - labels) ** 2).mean()

    anchor_gradient = torch.func.grad(loss)(anchor)
    assert float(target_surrogate(anchor, anchor, anchor_gradient, 1.0)) == 0.0
    point = anchor.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target_surrogate(point, anchor, anchor_gradient, 1.0), point)
    torch.testing.assert_close(grad, anchor_gradient)
    for _ in range(20):
        z = anchor + 3 * torch.randn(20, generator=gen, dtype=torch.float64)
        assert float(loss(z)) <= float(loss(anchor) + target_surrogate(z, anchor, anchor_gradient, 10.0)) + 1e-12
        # closed form: ⟨g, z − z_t⟩ + ‖z − z_t‖² / (2η)
        expected = float(anchor_gradient @ (z - anchor) + (z - anchor) @ (z - anchor) / 20.0)
        assert float(target_surrogate(z, anchor, anchor_gradient, 10.0)) == pytest.approx(expected, rel=1e-12)
    # η above the smoothness bound: not an upper bound any more somewhere
    z = anchor + 10 * anchor_gradient
    assert float(loss(z)) > float(loss(anchor) + target_surrogate(z, anchor, anchor_gradient, 100.0))


def test_full_batch_surrogate_descent_decreases_the_loss_monotonically():
    inputs, labels, params0 = _data(n=60)
    # mean cross-entropy is (1/n)-smooth in the logits: η = n keeps g_t an upper bound (majorization-minimization)
    result = sso(
        _linear,
        torch.nn.functional.cross_entropy,
        params0,
        inputs,
        labels,
        eta=60.0,
        inner_lr=0.05,
        inner_steps=10,
        outer_steps=15,
    )
    assert all(b <= a + 1e-12 for a, b in zip(result.objectives, result.objectives[1:]))
    assert result.objectives[-1] < result.objectives[0] - 0.1


def test_more_inner_steps_lower_the_loss_per_expensive_call():
    inputs, labels, params0 = _data(n=200, seed=5)
    runs = {
        m: sso(
            _linear,
            torch.nn.functional.cross_entropy,
            params0,
            inputs,
            labels,
            eta=20.0,
            inner_lr=0.1,
            inner_steps=m,
            outer_steps=10,
            batch_size=50,
            generator=torch.Generator().manual_seed(0),
        )
        for m in (1, 10)
    }
    assert runs[10].objectives[-1] < runs[1].objectives[-1]


def test_tol_stops_early_and_float32_follows():
    inputs, labels, params0 = _data()
    result = sso(
        _linear,
        torch.nn.functional.cross_entropy,
        params0.float(),
        inputs.float(),
        labels,
        eta=40.0,
        inner_lr=0.5,
        inner_steps=5,
        outer_steps=500,
        tol=1e-2,
    )
    assert result.converged and result.n_iter < 500 and result.solution.dtype == torch.float32


def test_rejects_bad_input():
    inputs, labels, params0 = _data()
    loss = torch.nn.functional.cross_entropy
    call = lambda **kw: sso(
        _linear,
        loss,
        kw.pop("params0", params0),
        kw.pop("inputs", inputs),  # noqa: E731
        kw.pop("labels", labels),
        **{"eta": 1.0, "inner_lr": 0.1, **kw},
    )
    with pytest.raises(TypeError, match="params0"):
        call(params0=[1.0])
    with pytest.raises(ValueError, match="params0 must have 1 dimensions"):
        call(params0=params0.reshape(4, 3))
    with pytest.raises(ValueError, match="params0 has 1 non-finite"):
        call(params0=torch.cat([params0[:-1], torch.tensor([math.inf], dtype=torch.float64)]))
    with pytest.raises(ValueError, match="same number"):
        call(labels=labels[:5])
    with pytest.raises(ValueError, match="eta must be a number in \\(0, inf\\)"):
        call(eta=0.0)
    with pytest.raises(ValueError, match="inner_lr must be a number"):
        call(inner_lr=-1.0)
    with pytest.raises(ValueError, match="inner_steps must be an integer"):
        call(inner_steps=0)
    with pytest.raises(ValueError, match="outer_steps must be an integer"):
        call(outer_steps=1.5)
    with pytest.raises(ValueError, match="batch_size must be an integer in \\[1, 40\\]"):
        call(batch_size=41, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        call(batch_size=10)
    with pytest.raises(ValueError, match="tol must be a number"):
        call(tol=-1.0)
    with pytest.raises(TypeError, match="line_search must be a bool"):
        call(line_search="armijo")
    with pytest.raises(ValueError, match="loss must return a scalar"):
        sso(_linear, lambda z, y: z, params0, inputs, labels, eta=1.0, inner_lr=0.1)


def test_surrogate_rejects_bad_input():
    z = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="anchor must have targets' shape"):
        target_surrogate(z, torch.zeros(3), z, 1.0)
    with pytest.raises(ValueError, match="anchor_gradient must have targets' shape"):
        target_surrogate(z, z, torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="eta must be a number"):
        target_surrogate(z, z, z, -1.0)
    with pytest.raises(TypeError, match="targets"):
        target_surrogate(None, z, z, 1.0)
