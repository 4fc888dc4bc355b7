"""PGD attacks: closed forms on linear models, the ε-ball, the model left untouched, determinism,
rejected arguments, the smoothness attack of the smooth adversarial comp-sum loss and the KL attack of TRADES."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regkit.attacks import pgd_attack, smoothness_attack, trades_attack
from regkit.losses import margin_vector_distance, trades_kl


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def linear_binary(seed=0, d=7, b=20):
    torch.manual_seed(seed)
    model = nn.Linear(d, 2).double()
    g = _gen(seed + 1)
    return model, torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(0, 2, (b,), generator=g)


def mlp(seed=0, d=6, k=4, b=16):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, k)).double()
    g = _gen(seed + 1)
    return model, torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(0, k, (b,), generator=g)


def state(model):
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


# --- closed forms on a linear model ------------------------------------------------------------------


@pytest.mark.parametrize("random_start", [True, False])
def test_linf_worst_case_of_a_binary_linear_model(random_start):
    """The margin (w_y - w_o)·x + b_y - b_o is linear: its minimum over the ℓ∞ ball is at x - ε sign(w_y - w_o)."""
    model, x, labels = linear_binary()
    eps = 0.3
    x_adv = pgd_attack(
        model, x, labels, eps=eps, step_size=0.1, steps=8, random_start=random_start, generator=_gen(2)
    )  # 8 · 0.1 >= 2ε: every coordinate reaches its corner from anywhere in the ball
    w = model.weight.detach()
    direction = (w[labels] - w[1 - labels]).sign()
    torch.testing.assert_close(x_adv, x - eps * direction)
    clean, attacked = (
        F.cross_entropy(model(x), labels, reduction="none"),
        F.cross_entropy(model(x_adv), labels, reduction="none"),
    )
    assert (attacked >= clean).all() and (attacked > clean).any()


def test_l2_worst_case_of_a_binary_linear_model():
    """Over the ℓ2 ball the margin is minimal at x - ε v/‖v‖, v = w_y - w_o."""
    model, x, labels = linear_binary(3)
    eps = 0.5
    x_adv = pgd_attack(model, x, labels, eps=eps, step_size=0.2, steps=200, norm="2", generator=_gen(4))
    w = model.weight.detach()
    v = w[labels] - w[1 - labels]
    torch.testing.assert_close(x_adv, x - eps * v / v.norm(dim=1, keepdim=True), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_the_loss_at_the_attack_is_at_least_the_clean_loss(norm):
    torch.manual_seed(5)
    model = nn.Linear(5, 4).double()
    x, labels = (
        torch.randn(64, 5, generator=_gen(6), dtype=torch.float64),
        torch.randint(0, 4, (64,), generator=_gen(7)),
    )
    x_adv = pgd_attack(model, x, labels, eps=0.2, step_size=0.05, steps=10, norm=norm, generator=_gen(8))
    clean = F.cross_entropy(model(x), labels, reduction="none")
    attacked = F.cross_entropy(model(x_adv), labels, reduction="none")
    assert (attacked >= clean).all()
    assert attacked.mean() > clean.mean() + 0.1


# --- the ball, the box, the inputs -------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("random_start", [True, False])
def test_the_perturbation_stays_in_the_ball(norm, random_start):
    model, x, labels = mlp()
    x = x.reshape(16, 2, 3)
    flat = nn.Sequential(nn.Flatten(), model)
    eps = 0.25
    x_adv = pgd_attack(
        flat, x, labels, eps=eps, step_size=0.2, steps=15, norm=norm, random_start=random_start, generator=_gen(1)
    )
    delta = (x_adv - x).reshape(16, -1)
    size = delta.abs().amax(1) if norm == "inf" else delta.norm(dim=1)
    assert (size <= eps * (1 + 1e-12)).all()
    assert (size > 0.5 * eps).all()  # it moved: the steps are larger than the ball


def test_the_random_start_is_uniform_in_the_ball_and_the_box_is_respected():
    x = torch.rand(4000, 3, generator=_gen(9), dtype=torch.float64)
    constant = lambda z: z.sum(1, keepdim=True) * 0  # zero gradient: the attack stays at its start
    start = pgd_attack(
        constant,
        x,
        torch.zeros(4000),
        eps=0.1,
        step_size=0.01,
        steps=1,
        loss_fn=lambda z, y: z.sum(),
        generator=_gen(10),
    )
    delta = start - x
    assert (
        delta.abs().max() <= 0.1 and delta.mean().abs() < 0.005 and delta.abs().mean() == pytest.approx(0.05, abs=0.003)
    )
    l2 = pgd_attack(
        constant,
        x,
        torch.zeros(4000),
        eps=0.1,
        step_size=0.01,
        steps=1,
        norm="2",
        loss_fn=lambda z, y: z.sum(),
        generator=_gen(10),
    )
    radius = (l2 - x).norm(dim=1)
    assert radius.max() <= 0.1 * (1 + 1e-12)
    assert (radius**3).mean() == pytest.approx(0.1**3 / 2, rel=0.05)  # uniform in the 3-ball: r^3 ~ U(0, eps^3)
    model, _, labels = linear_binary(d=3, b=4000)
    boxed = pgd_attack(
        model,
        x,
        torch.randint(0, 2, (4000,), generator=_gen(11)),
        eps=0.2,
        step_size=0.1,
        steps=4,
        clamp=(0.0, 1.0),
        generator=_gen(12),
    )
    assert boxed.min() >= 0 and boxed.max() <= 1 and (boxed - x).abs().max() <= 0.2 * (1 + 1e-12)


def test_the_result_is_detached_and_x_is_unchanged():
    model, x, labels = linear_binary()
    x = x.requires_grad_()
    before = x.detach().clone()
    x_adv = pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=3, generator=_gen())
    assert not x_adv.requires_grad and x_adv.grad_fn is None
    torch.testing.assert_close(x.detach(), before)
    assert x.grad is None
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape


def test_eps_zero_returns_a_copy_of_x():
    model, x, labels = linear_binary()
    x_adv = pgd_attack(model, x, labels, eps=0.0, step_size=0.1, steps=3)
    torch.testing.assert_close(x_adv, x)
    assert x_adv.data_ptr() != x.data_ptr()


def test_works_under_no_grad_and_with_a_mean_loss():
    model, x, labels = linear_binary(13)
    with torch.no_grad():
        x_adv = pgd_attack(model, x, labels, eps=0.3, step_size=0.1, steps=8, generator=_gen(2))
    summed = pgd_attack(
        model,
        x,
        labels,
        eps=0.3,
        step_size=0.1,
        steps=8,
        generator=_gen(2),
        loss_fn=lambda z, y: F.cross_entropy(z, y, reduction="none"),
    )
    torch.testing.assert_close(x_adv, summed)


# --- the model is left as it was found -----------------------------------------------------------------


def test_parameters_buffers_gradients_and_modes_are_unchanged():
    model, x, labels = mlp()
    model.train()
    model[1].eval()  # a mixed-mode model: a frozen BatchNorm inside a training network
    params = state(model)
    modes = [m.training for m in model.modules()]
    x_adv = pgd_attack(model, x, labels, eps=0.2, step_size=0.05, steps=5, generator=_gen(3))
    assert [m.training for m in model.modules()] == modes
    for name, value in state(model).items():
        torch.testing.assert_close(value, params[name], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())
    # the attack ran in eval mode: dropout off, BatchNorm on its running statistics (deterministic)
    again = pgd_attack(model, x, labels, eps=0.2, step_size=0.05, steps=5, generator=_gen(3))
    torch.testing.assert_close(x_adv, again, rtol=0, atol=0)
    model.eval()
    eval_copy = copy.deepcopy(model)
    torch.testing.assert_close(
        pgd_attack(eval_copy, x, labels, eps=0.2, step_size=0.05, steps=5, generator=_gen(3)), x_adv
    )


def test_modes_are_restored_when_the_loss_raises():
    model, x, labels = mlp()
    model.train()

    def broken(logits, labels):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=2, loss_fn=broken)
    assert all(m.training for m in model.modules())


def test_existing_parameter_gradients_are_kept():
    model, x, labels = linear_binary()
    F.cross_entropy(model(x), labels).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=3, generator=_gen())
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)


# --- randomness ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_deterministic_with_a_generator(norm):
    model, x, labels = mlp(1)
    run = lambda seed: pgd_attack(model, x, labels, eps=0.2, step_size=0.01, steps=3, norm=norm, generator=_gen(seed))
    torch.testing.assert_close(run(7), run(7), rtol=0, atol=0)
    assert not torch.equal(run(7), run(8))
    # without a random start the attack is deterministic without any generator
    fixed = lambda: pgd_attack(model, x, labels, eps=0.2, step_size=0.01, steps=3, norm=norm, random_start=False)
    torch.testing.assert_close(fixed(), fixed(), rtol=0, atol=0)


def test_device_parity(device):
    model, x, labels = linear_binary(14)
    expected = pgd_attack(model, x, labels, eps=0.2, step_size=0.05, steps=5, norm="2", generator=_gen(15))
    ours = pgd_attack(
        model.to(device),
        x.to(device),
        labels.to(device),
        eps=0.2,
        step_size=0.05,
        steps=5,
        norm="2",
        generator=_gen(15),
    )
    assert ours.device.type == device.type
    torch.testing.assert_close(ours.cpu(), expected, rtol=1e-9, atol=1e-10)


# --- rejected arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("eps", {"eps": -0.1}),
        ("eps", {"eps": math.nan}),
        ("eps", {"eps": math.inf}),
        ("step_size", {"step_size": 0.0}),
        ("step_size", {"step_size": -1.0}),
        ("steps", {"steps": 0}),
        ("steps", {"steps": -3}),
        ("steps", {"steps": 2.5}),
        ("norm", {"norm": "1"}),
        ("norm", {"norm": "l2"}),
        ("norm", {"norm": 2}),
        ("clamp", {"clamp": (1.0, 0.0)}),
        ("clamp", {"clamp": (0.0,)}),
        ("clamp", {"clamp": (-10.0, 0.0)}),  # x has entries above 0
    ],
)
def test_bad_arguments_raise_a_value_error_naming_them(name, kwargs):
    model, x, labels = linear_binary(b=3)
    call = {"eps": 0.1, "step_size": 0.05, "steps": 2} | kwargs
    with pytest.raises(ValueError, match=name):
        pgd_attack(model, x, labels, **call)


def test_bad_inputs():
    model, x, labels = linear_binary(b=3)
    with pytest.raises(ValueError, match="labels"):
        pgd_attack(model, x, labels[:2], eps=0.1, step_size=0.05, steps=2)
    with pytest.raises(ValueError, match="x"):
        pgd_attack(model, x.long(), labels, eps=0.1, step_size=0.05, steps=2)
    with pytest.raises(TypeError, match="model"):
        pgd_attack("model", x, labels, eps=0.1, step_size=0.05, steps=2)
    with pytest.raises(TypeError, match="loss_fn"):
        pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=2, loss_fn=None)
    with pytest.raises(TypeError, match="generator"):
        pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=2, generator=0)
    with pytest.raises(TypeError, match="steps"):
        pgd_attack(model, x, labels, eps=0.1, step_size=0.05, steps=True)


# --- the smoothness attack of ADV-comp-sum -------------------------------------------------------------


@pytest.mark.parametrize("distance", ["margins", "logits"])
@pytest.mark.parametrize("norm", ["inf", "2"])
def test_smoothness_attack_increases_the_margin_distance(distance, norm):
    model, x, labels = mlp(2)
    model.train()
    params, modes = state(model), [m.training for m in model.modules()]
    eps = 0.3
    x_adv = smoothness_attack(
        model, x, labels, eps=eps, step_size=0.05, steps=10, norm=norm, distance=distance, generator=_gen(4)
    )
    start = smoothness_attack(
        model, x, labels, eps=eps, step_size=1e-12, steps=1, norm=norm, distance=distance, generator=_gen(4)
    )
    delta = (x_adv - x).reshape(16, -1)
    assert ((delta.abs().amax(1) if norm == "inf" else delta.norm(dim=1)) <= eps * (1 + 1e-12)).all()
    model.eval()
    with torch.no_grad():
        clean = model(x)
        reached = margin_vector_distance(clean, model(x_adv), labels, distance=distance)
        random = margin_vector_distance(clean, model(start), labels, distance=distance)
    assert reached.mean() > 2 * random.mean()
    model.train()
    assert [m.training for m in model.modules()] == modes
    for name, value in state(model).items():
        torch.testing.assert_close(value, params[name], rtol=0, atol=0)


def test_smoothness_attack_needs_its_random_start():
    """The distance and its gradient are 0 at x' = x: from x the attack cannot move."""
    model, x, labels = mlp(3)
    x_adv = smoothness_attack(model, x, labels, eps=0.3, step_size=0.05, steps=5, random_start=False)
    torch.testing.assert_close(x_adv, x, rtol=0, atol=0)


def test_smoothness_attack_rejects_an_unknown_distance():
    model, x, labels = mlp(3)
    with pytest.raises(ValueError, match="distance"):
        smoothness_attack(model, x, labels, eps=0.3, step_size=0.05, steps=5, distance="kl")


# --- the KL attack of TRADES ------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_trades_attack_increases_the_kl_and_leaves_the_model(norm):
    model, x, _ = mlp(4)
    model.train()
    params, modes = state(model), [m.training for m in model.modules()]
    eps = 0.3
    x_adv = trades_attack(model, x, eps=eps, step_size=0.05, steps=10, norm=norm, generator=_gen(5))
    start = trades_attack(model, x, eps=eps, step_size=1e-12, steps=1, norm=norm, generator=_gen(5))
    delta = (x_adv - x).reshape(16, -1)
    assert ((delta.abs().amax(1) if norm == "inf" else delta.norm(dim=1)) <= eps * (1 + 1e-12)).all()
    model.eval()
    with torch.no_grad():
        clean = model(x)
        reached, random = trades_kl(clean, model(x_adv)), trades_kl(clean, model(start))
    assert reached.mean() > 2 * random.mean()
    model.train()
    assert [m.training for m in model.modules()] == modes
    for name, value in state(model).items():
        torch.testing.assert_close(value, params[name], rtol=0, atol=0)


def test_trades_attack_is_pgd_on_the_kl_from_the_clean_logits():
    """The same points as pgd_attack with the KL from fixed eval-mode clean logits as its loss, in the box."""
    model, x, _ = mlp(5)
    x = x.sigmoid()  # inside the [0, 1] box
    model.eval()
    with torch.no_grad():
        clean = model(x)
    expected = pgd_attack(
        model, x, clean, eps=0.1, step_size=0.025, steps=10, generator=_gen(6), clamp=(0, 1),
        loss_fn=lambda adv_logits, clean_logits: trades_kl(clean_logits, adv_logits, reduction="sum"),
    )  # fmt: skip
    model.train()
    got = trades_attack(model, x, eps=0.1, step_size=0.025, steps=10, generator=_gen(6), clamp=(0, 1))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert ((got >= 0) & (got <= 1)).all()
