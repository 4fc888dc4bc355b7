"""The evidence rule: intervals against hand-computed t intervals, verdicts, combination."""

import math

import numpy as np
import pytest
from scipy import stats

from regkit.workbook.evidence import Evidence, combine, decide


def t_interval(values):
    """Mean ± t_{0.975, n−1} · s / √n, written out by hand (scipy only for the t quantile)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return x.mean() - half, x.mean() + half


def test_mean_is_the_student_t_interval():
    e = Evidence.mean("x", [1, 2, 3, 4, 5], threshold=0, direction=">=")
    assert e.estimate == 3 and e.n == 5 and e.kind == "mean"
    assert (e.low, e.high) == pytest.approx((1.0367568, 4.9632432), abs=1e-6)  # 3 ∓ 2.776445 · √2.5 / √5
    assert (e.low, e.high) == pytest.approx(t_interval([1, 2, 3, 4, 5]))


def test_paired_is_the_t_interval_of_the_differences():
    a, b = [5, 6, 7, 4, 6], [1, 2, 3, 1, 2]
    e = Evidence.paired("gain", a, b, threshold=3, direction=">=")
    assert e.estimate == pytest.approx(3.8)
    assert (e.low, e.high) == pytest.approx((3.2447114, 4.3552886), abs=1e-6)  # 3.8 ∓ 2.776445 · 0.2
    assert e.verdict == "reproduced"
    with pytest.raises(ValueError, match="one sample per seed"):
        Evidence.paired("gain", [1, 2], [1, 2, 3], threshold=0, direction=">=")


def test_unpaired_is_welchs_interval():
    a, b = np.array([1.0, 2, 3]), np.array([2.0, 3, 5])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)  # Welch–Satterthwaite
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    e = Evidence.unpaired("diff", a, b, threshold=0, direction="<")
    assert e.estimate == pytest.approx(-4 / 3)
    assert (e.low, e.high) == pytest.approx((-4 / 3 - half, -4 / 3 + half))
    assert e.verdict == "inconclusive"


def test_paired_is_tighter_than_unpaired_on_correlated_arms():
    a = [10.0, 20.0, 30.0, 40.0, 50.0]
    b = [9.0, 19.5, 28.0, 39.0, 48.5]
    paired = Evidence.paired("d", a, b, threshold=0, direction=">")
    unpaired = Evidence.unpaired("d", a, b, threshold=0, direction=">")
    assert paired.estimate == pytest.approx(unpaired.estimate)
    assert paired.verdict == "reproduced" and unpaired.verdict == "inconclusive"


@pytest.mark.parametrize(
    "samples, threshold, direction, verdict",
    [
        ([4, 5, 6], 2, ">=", "reproduced"),  # interval [2.52, 7.48]
        ([4, 5, 6], 7, ">=", "inconclusive"),  # the interval holds 7
        ([4, 5, 6], 8, ">=", "not_reproduced"),
        ([4, 5, 6], 8, "<=", "reproduced"),
        ([4, 5, 6], 2, "<=", "not_reproduced"),
        ([4, 5, 6], 5, "<", "inconclusive"),
        ([5, 5, 5], 5, ">=", "reproduced"),  # zero width, on the inclusive side
        ([5, 5, 5], 5, ">", "not_reproduced"),  # strict: 5 > 5 fails
        ([5, 5, 5], 5, "<", "not_reproduced"),
        ([2.5], 3, ">=", "inconclusive"),  # one seed says nothing about the spread
    ],
)
def test_verdicts_in_both_directions(samples, threshold, direction, verdict):
    assert Evidence.mean("x", samples, threshold=threshold, direction=direction).verdict == verdict


def test_decide_on_an_interval():
    assert decide(1.0, 2.0, 0.5, ">") == "reproduced"
    assert decide(1.0, 2.0, 1.0, ">") == "inconclusive"
    assert decide(1.0, 2.0, 2.0, ">=") == "inconclusive"
    assert decide(1.0, 2.0, 2.0, "<") == "inconclusive"
    assert decide(1.0, 2.0, 0.5, "<=") == "not_reproduced"
    with pytest.raises(ValueError, match="direction"):
        decide(0, 1, 0, "=>")


def test_median_uses_order_statistics():
    six = [3.0, 1.0, 2.0, 6.0, 5.0, 4.0]
    e = Evidence.median("time ratio", six, threshold=7, direction="<")
    assert e.estimate == 3.5 and (e.low, e.high) == (1.0, 6.0)  # P(min ≤ median ≤ max) = 1 − 2/64 ≥ 95 %
    assert e.verdict == "reproduced"
    three = Evidence.median("time ratio", [1.0, 2.0, 3.0], threshold=7, direction="<")
    assert math.isinf(three.low) and math.isinf(three.high) and three.verdict == "inconclusive"


def test_exact_quantities_are_decided_directly():
    e = Evidence.exact("max error", 3e-7, threshold=1e-6, direction="<=")
    assert (e.estimate, e.low, e.high, e.n, e.verdict) == (3e-7, 3e-7, 3e-7, 1, "reproduced")
    assert Evidence.exact("iterations", 12, threshold=10, direction="<=").verdict == "not_reproduced"
    with pytest.raises(ValueError, match="one value"):
        Evidence._build("x", "exact", [1, 2], None, 0, ">=")


@pytest.mark.parametrize(
    "verdicts, combined",
    [
        (["reproduced", "reproduced"], "reproduced"),
        (["reproduced", "inconclusive"], "inconclusive"),
        (["inconclusive", "not_reproduced"], "not_reproduced"),
        (["reproduced", "not_reproduced"], "not_reproduced"),
        (["inconclusive"], "inconclusive"),
    ],
)
def test_combination_rule(verdicts, combined):
    assert combine(verdicts) == combined


def test_combine_rejects_nothing_and_unknown_verdicts():
    with pytest.raises(ValueError, match="at least one"):
        combine([])
    with pytest.raises(ValueError, match="verdicts must be"):
        combine(["maybe"])


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")], "abc"])
def test_empty_or_non_finite_samples_are_rejected(bad):
    with pytest.raises(ValueError, match="samples"):
        Evidence.mean("x", bad, threshold=0, direction=">=")


def test_bad_threshold_direction_and_label():
    with pytest.raises(ValueError, match="threshold"):
        Evidence.mean("x", [1, 2], threshold=float("nan"), direction=">=")
    with pytest.raises(ValueError, match="direction"):
        Evidence.mean("x", [1, 2], threshold=0, direction="greater")
    with pytest.raises(ValueError, match="label"):
        Evidence.mean("", [1, 2], threshold=0, direction=">=")


def test_json_round_trip_and_recompute():
    for e in (
        Evidence.mean("m", [1.0, 2.5, 2.0], threshold=1, direction=">"),
        Evidence.paired("p", [1, 2, 3], [0, 2, 1], threshold=0, direction=">="),
        Evidence.unpaired("u", [1, 2, 3], [0, 2, 1, 5], threshold=0, direction=">="),
        Evidence.median("t", [1, 2, 3], threshold=0, direction=">="),
        Evidence.mean("one", [1.0], threshold=0, direction=">="),
        Evidence.exact("x", 0.5, threshold=1, direction="<"),
    ):
        assert Evidence.from_dict(e.to_dict()) == e
        assert e.recompute() == e
    assert Evidence.mean("one", [1.0], threshold=0, direction=">=").to_dict()["low"] is None
