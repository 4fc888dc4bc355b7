"""Dice loss and the self-adjusting Dice loss (DSC): hand-computed values, a brute-force reference of
the paper's formulas, the official code's formula where it is self-consistent, limits, gradients and
rejected inputs."""

import math

import numpy as np
import pytest
import torch

from regkit.losses import dice_loss

LN3 = math.log(3.0)


def brute_force(logits, labels, *, smooth, alpha, square, set_level):
    """The paper's formulas term by term in float64 Python: 1 - (2 p~ y + γ) / (p~^(2) + y^(2) + γ)."""
    z = logits.double().numpy()
    y = labels.numpy()
    if z.ndim == 1:
        p = 1 / (1 + np.exp(-z))[:, None]
        t = y[:, None].astype(float)
    else:
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        t = np.eye(z.shape[1])[y]
    pt = (1 - p) ** alpha * p
    power = 2 if square else 1
    if set_level:
        return np.array(
            [
                1
                - (2 * np.sum(pt[:, c] * t[:, c]) + smooth)
                / (np.sum(pt[:, c] ** power) + np.sum(t[:, c] ** power) + smooth)
                for c in range(p.shape[1])
            ]
        )
    return np.array(
        [
            sum(
                1 - (2 * pt[i, c] * t[i, c] + smooth) / (pt[i, c] ** power + t[i, c] ** power + smooth)
                for c in range(p.shape[1])
            )
            for i in range(p.shape[0])
        ]
    )


OPTIONS = [
    dict(alpha=alpha, square_denominator=square, set_level=set_level)
    for alpha in (0.0, 0.01, 0.5, 1.0, 2.0)
    for square in (False, True)
    for set_level in (False, True)
]
#: fewer for the slower checks: plain Dice, the official α, and a large α
SOME = [o for o in OPTIONS if o["alpha"] in (0.0, 0.01, 2.0)]


# --- hand-computed values ----------------------------------------------------------------------------------------


def test_binary_hand_computed():
    z, y = torch.tensor([0.0, LN3, -LN3], dtype=torch.float64), torch.tensor([1, 1, 0])  # p = 1/2, 3/4, 1/4
    # DSC per example, γ = 1: 1 - 2/2.5, 1 - 2.5/2.75, 1 - 1/1.25
    torch.testing.assert_close(dice_loss(z, y, reduction="none"), torch.tensor([0.2, 1 / 11, 0.2], dtype=torch.float64))
    assert float(dice_loss(z, y)) == pytest.approx((0.2 + 1 / 11 + 0.2) / 3)
    # DL (squared denominator): 1 - 2/2.25, 1 - 2.5/2.5625, 1 - 1/1.0625
    torch.testing.assert_close(
        dice_loss(z, y, square_denominator=True, reduction="none"),
        torch.tensor([1 / 9, 1 / 41, 1 / 17], dtype=torch.float64),
    )
    # set level: 1 - 3.5/4.5 and 1 - 3.5/3.875
    torch.testing.assert_close(
        dice_loss(z, y, set_level=True, reduction="none"), torch.tensor([2 / 9], dtype=torch.float64)
    )
    torch.testing.assert_close(
        dice_loss(z, y, set_level=True, square_denominator=True, reduction="none"),
        torch.tensor([3 / 31], dtype=torch.float64),
    )
    # self-adjusting, α = 1: p~ = p(1 - p) = 1/4, 3/16, 3/16 -> 1 - 1.5/2.25, 1 - 1.375/2.1875, 1 - 1/1.1875
    torch.testing.assert_close(
        dice_loss(z, y, alpha=1.0, reduction="none"), torch.tensor([1 / 3, 13 / 35, 3 / 19], dtype=torch.float64)
    )
    # γ = 0.5, α = 0: 1 - 1.5/2, 1 - 2/2.25, 1 - 0.5/0.75
    torch.testing.assert_close(
        dice_loss(z, y, smooth=0.5, reduction="none"), torch.tensor([0.25, 1 / 9, 1 / 3], dtype=torch.float64)
    )


def test_multiclass_hand_computed():
    z = torch.tensor([[0.0, 0.0], [LN3, 0.0]], dtype=torch.float64)  # p = (1/2, 1/2), (3/4, 1/4)
    y = torch.tensor([0, 1])
    # row 1: class 0 (y=1, p=1/2) 1 - 2/2.5 = 1/5, class 1 (y=0, p=1/2) 1 - 1/1.5 = 1/3
    # row 2: class 0 (y=0, p=3/4) 1 - 1/1.75 = 3/7, class 1 (y=1, p=1/4) 1 - 1.5/2.25 = 1/3
    expected = torch.tensor([1 / 5 + 1 / 3, 3 / 7 + 1 / 3], dtype=torch.float64)
    torch.testing.assert_close(dice_loss(z, y, reduction="none"), expected)
    torch.testing.assert_close(dice_loss(z, y, reduction="sum"), expected.sum())
    # set level per class: class 0: 1 - (2·1/2 + 1)/(5/4 + 1 + 1), class 1: 1 - (2·1/4 + 1)/(3/4 + 1 + 1)
    torch.testing.assert_close(
        dice_loss(z, y, set_level=True, reduction="none"),
        torch.tensor([1 - 2 / 3.25, 1 - 1.5 / 2.75], dtype=torch.float64),
    )


# --- a brute-force reference for every option -------------------------------------------------------------------


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("seed", range(3))
def test_against_brute_force(options, seed):
    g = torch.Generator().manual_seed(seed)
    smooth = [1.0, 1e-4, 0.3][seed]
    for logits, labels in (
        (torch.randn(9, generator=g, dtype=torch.float64) * 3, torch.randint(0, 2, (9,), generator=g)),
        (torch.randn(9, 4, generator=g, dtype=torch.float64) * 3, torch.randint(0, 4, (9,), generator=g)),
    ):
        value = dice_loss(logits, labels, smooth=smooth, reduction="none", **options)
        expected = brute_force(
            logits,
            labels,
            smooth=smooth,
            alpha=options["alpha"],
            square=options["square_denominator"],
            set_level=options["set_level"],
        )
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_the_official_formula_where_it_is_self_consistent():
    """The official ``DiceLoss``: binary logits (B, 1) -> set level over the flattened batch;
    multi-class with ``square_denominator`` -> per example and class, summed over classes, then the mean."""
    g = torch.Generator().manual_seed(7)
    smooth, alpha = 1.0, 0.01
    z, y = torch.randn(16, generator=g, dtype=torch.float64) * 2, torch.randint(0, 2, (16,), generator=g)
    p = torch.sigmoid(z)
    pt = (1 - p) ** alpha * p
    for square in (False, True):
        den = (pt**2).sum() + (y.double() ** 2).sum() if square else pt.sum() + y.double().sum()
        official = 1 - (2 * (pt * y).sum() + smooth) / (den + smooth)
        value = dice_loss(z, y, smooth=smooth, alpha=alpha, square_denominator=square, set_level=True)
        torch.testing.assert_close(value, official)
    zz, yy = torch.randn(16, 5, generator=g, dtype=torch.float64) * 2, torch.randint(0, 5, (16,), generator=g)
    pp = zz.softmax(1)
    ppt = (1 - pp) ** alpha * pp
    onehot = torch.nn.functional.one_hot(yy, 5).double()
    official = (1 - (2 * ppt * onehot + smooth) / (ppt**2 + onehot**2 + smooth)).sum(1).mean()
    torch.testing.assert_close(dice_loss(zz, yy, smooth=smooth, alpha=alpha, square_denominator=True), official)


# --- limits ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("square", [False, True])
@pytest.mark.parametrize("set_level", [False, True])
@pytest.mark.parametrize("smooth", [1e-6, 1.0])
def test_perfect_predictions_give_zero_loss(square, set_level, smooth):
    y = torch.tensor([1, 0, 0, 1, 0, 0, 0])
    z = torch.where(y == 1, 200.0, -200.0).double()  # p within e^-200 of 0/1: below any smooth
    value = dice_loss(z, y, smooth=smooth, square_denominator=square, set_level=set_level, reduction="sum")
    assert 0 <= float(value) < 1e-15
    labels = torch.tensor([2, 0, 1, 2, 2])
    zz = torch.nn.functional.one_hot(labels, 3).double() * 200.0
    value = dice_loss(zz, labels, smooth=smooth, square_denominator=square, set_level=set_level, reduction="sum")
    assert 0 <= float(value) < 1e-15


def test_alpha_zero_is_plain_dice_and_small_alpha_tends_to_it():
    g = torch.Generator().manual_seed(3)
    for logits, labels in (
        (torch.randn(12, generator=g, dtype=torch.float64), torch.randint(0, 2, (12,), generator=g)),
        (torch.randn(12, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (12,), generator=g)),
    ):
        p = torch.sigmoid(logits)[:, None] if logits.ndim == 1 else logits.softmax(1)
        t = labels[:, None].double() if logits.ndim == 1 else torch.nn.functional.one_hot(labels, 3).double()
        plain = (1 - (2 * p * t + 1.0) / (p + t + 1.0)).sum(1)
        torch.testing.assert_close(dice_loss(logits, labels, alpha=0.0, reduction="none"), plain)
        for square in (False, True):
            for set_level in (False, True):
                kwargs = dict(square_denominator=square, set_level=set_level, reduction="none")
                torch.testing.assert_close(
                    dice_loss(logits, labels, alpha=1e-10, **kwargs), dice_loss(logits, labels, alpha=0.0, **kwargs)
                )


def test_self_adjusting_weight_moves_the_optimum_of_a_positive_to_one_over_one_plus_alpha():
    """p~ = (1 - p)^α p peaks at p = 1/(1 + α): a positive's DSC loss is smallest there, and at
    p = 1 it is 1/(1 + γ) (the paper's formula; documented in the module)."""
    p = torch.linspace(0.001, 0.999, 9999, dtype=torch.float64)
    z, y = torch.log(p) - torch.log1p(-p), torch.ones(9999, dtype=torch.int64)
    for alpha in (0.25, 1.0, 3.0):
        losses = dice_loss(z, y, alpha=alpha, reduction="none")
        assert float(p[losses.argmin()]) == pytest.approx(1 / (1 + alpha), abs=2e-3)
    for smooth in (1.0, 0.1):
        at_one = dice_loss(torch.tensor([80.0], dtype=torch.float64), torch.tensor([1]), alpha=1.0, smooth=smooth)
        assert float(at_one) == pytest.approx(1 / (1 + smooth), rel=1e-12)
        # a confidently wrong negative (p -> 1) tends to zero loss, like an easy negative
        wrong = dice_loss(torch.tensor([80.0], dtype=torch.float64), torch.tensor([0]), alpha=1.0, smooth=smooth)
        assert float(wrong) < 1e-30


# --- gradients ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", SOME, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_gradients_match_finite_differences(options):
    g = torch.Generator().manual_seed(8)
    z = (torch.randn(6, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.tensor([0, 1, 1, 0, 0, 1])
    assert torch.autograd.gradcheck(lambda x: dice_loss(x, y, reduction="none", **options), (z,))
    zz = (torch.randn(6, 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    yy = torch.tensor([0, 1, 2, 0, 2, 1])
    assert torch.autograd.gradcheck(lambda x: dice_loss(x, yy, reduction="none", **options), (zz,))


@pytest.mark.parametrize("options", SOME, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_are_finite_at_saturated_logits(options, dtype):
    y = torch.tensor([0, 1, 1, 0, 0, 1])
    for scale in (30.0, 1e4, 1e30):
        z = (torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0, 1.0], dtype=dtype) * scale).requires_grad_()
        loss = dice_loss(z, y, **options)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        zz = (torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=dtype) * scale).requires_grad_()
        loss = dice_loss(zz, torch.tensor([0, 1, 2, 3, 0, 1]), **options)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(zz.grad).all()


def test_saturated_values_keep_their_size():
    """1 - p~ comes from log(1 - p), so a nearly right positive has its small loss, not 0."""
    z, y = torch.tensor([25.0]), torch.tensor([1])  # 1 - p = e^-25 ≈ 1.4e-11, below float32 rounding of p
    value = dice_loss(z, y, smooth=1.0)
    assert float(value) == pytest.approx(math.exp(-25.0) / 3, rel=1e-5)  # (1 - p)/(p + y + γ), p + y + γ = 3
    zz = torch.tensor([[25.0, 0.0, 0.0]])
    value = dice_loss(zz, torch.tensor([0]), smooth=1.0)
    e = math.exp(-25.0)  # each wrong class has p ≈ e, so the right one has 1 - p ≈ 2e
    assert float(value) == pytest.approx(2 * e / 3 + 2 * e / (e + 1), rel=1e-5)


# --- masked classes, reduction, dtypes --------------------------------------------------------------------------


@pytest.mark.parametrize("options", SOME, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_a_masked_class_is_a_removed_class(options):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64) * 3
    z[:, -1] = -math.inf
    y = torch.randint(0, 3, (5,), generator=g)
    full = z.clone().requires_grad_()
    kept = z[:, :-1].clone().requires_grad_()
    a = dice_loss(full, y, reduction="sum", **options)
    b = dice_loss(kept, y, reduction="sum", **options)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b)  # the masked class's own term (example or set level) is 1 - γ/γ = 0
    torch.testing.assert_close(full.grad[:, :-1], kept.grad)
    assert (full.grad[:, -1] == 0).all()
    one_left = torch.tensor([[2.0, -math.inf, -math.inf]], dtype=torch.float64, requires_grad=True)
    loss = dice_loss(one_left, torch.tensor([0]), **options)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(one_left.grad).all()


def test_reductions():
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(7, 3, generator=g), torch.randint(0, 3, (7,), generator=g)
    none = dice_loss(z, y, reduction="none")
    assert none.shape == (7,)
    torch.testing.assert_close(dice_loss(z, y), none.mean())
    torch.testing.assert_close(dice_loss(z, y, reduction="sum"), none.sum())
    per_class = dice_loss(z, y, set_level=True, reduction="none")
    assert per_class.shape == (3,)
    torch.testing.assert_close(dice_loss(z, y, set_level=True), per_class.mean())
    torch.testing.assert_close(dice_loss(z, y, set_level=True, reduction="sum"), per_class.sum())
    assert dice_loss(z[:, 0], (y > 0).long(), set_level=True, reduction="none").shape == (1,)
    assert dice_loss(z[:, 0], (y > 0).long(), reduction="none").shape == (7,)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(1)
    z, y = torch.randn(8, 3, generator=g) * 4, torch.randint(0, 3, (8,), generator=g)
    for alpha in (0.0, 1.0):
        x = z.to(dtype).requires_grad_()
        value = dice_loss(x, y, alpha=alpha, reduction="none")
        value.sum().backward()
        assert value.dtype == dtype and x.grad.dtype == dtype and torch.isfinite(x.grad).all()
        expected = dice_loss(z.to(dtype).double(), y, alpha=alpha, reduction="none")
        torch.testing.assert_close(value.double(), expected, rtol=2e-2, atol=2e-2)


def test_integer_label_dtypes_are_class_ids():
    z, y = torch.randn(4), torch.tensor([1, 0, 0, 1])
    expected = dice_loss(z, y)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
        torch.testing.assert_close(dice_loss(z, y.to(dtype)), expected)


# --- rejected inputs ---------------------------------------------------------------------------------------------

Z, Y = torch.tensor([0.3, -1.0, 2.0, 0.0]), torch.tensor([1, 0, 0, 1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"smooth": 0.0}, "smooth"),
        ({"smooth": -1.0}, "smooth"),
        ({"smooth": math.nan}, "smooth"),
        ({"alpha": -0.5}, "alpha"),
        ({"alpha": math.inf}, "alpha"),
        ({"reduction": "batchmean"}, "reduction"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        dice_loss(Z, Y, **kwargs)


@pytest.mark.parametrize("name", ["square_denominator", "set_level"])
def test_flags_must_be_bools(name):
    with pytest.raises(TypeError, match=name):
        dice_loss(Z, Y, **{name: 1})


@pytest.mark.parametrize(
    "logits, labels, name",
    [
        (Z, torch.tensor([1, 0, 2, 1]), "labels"),  # binary labels must be 0/1
        (Z, torch.tensor([1, 0, -1, 1]), "labels"),
        (Z, torch.tensor([True, False, True, False]), "labels"),
        (Z, Y.float(), "labels"),
        (Z, Y[:3], "labels"),
        (torch.randn(4, 3), torch.tensor([0, 1, 3, 2]), "labels"),
        (torch.tensor([0.3, math.nan, 2.0, 0.0]), Y, "logits"),
        (torch.tensor([0.3, math.inf, 2.0, 0.0]), Y, "logits"),
        (torch.tensor([[0.3, math.nan], [0.0, 1.0]]), torch.tensor([0, 1]), "logits"),
        (torch.tensor([[-math.inf, -math.inf], [0.0, 1.0]]), torch.tensor([0, 1]), "logits"),
        (torch.tensor([1, 0, 2, 0]), Y, "logits"),
        (torch.randn(4, 1), Y, "logits"),
        (torch.randn(4, 2, 2), Y, "logits"),
    ],
)
def test_bad_inputs_are_value_errors_naming_them(logits, labels, name):
    with pytest.raises(ValueError, match=name):
        dice_loss(logits, labels)
