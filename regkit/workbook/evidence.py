"""Evidence for a claim: samples, an estimate with a 95 % confidence interval, and a verdict.

A claim's criterion compares a quantity with a threshold (``gain ≥ 3 pts``). The notebook
gives the quantity's samples — one value per seed (or per replicate), or one value per seed
for each of two arms — and :class:`Evidence` estimates it, puts a 95 % interval around the
estimate, and decides:

* ``reproduced``: the whole interval lies on the claim's side of the threshold;
* ``not_reproduced``: the whole interval lies on the other side;
* ``inconclusive``: the interval contains the threshold (or there are too few samples for an
  interval at all: one seed of a stochastic quantity says nothing about its spread).

The rule, one for every notebook (``method`` in the record names the branch taken):

=====================  ==========  ========================================================
kind                   estimate    95 % interval
=====================  ==========  ========================================================
``mean``               mean        Student t over the samples (``scipy.stats.ttest_1samp``)
``paired``             mean of     Student t over the per-seed differences a − b
                       a − b       (``scipy.stats.ttest_rel``): arms on the same seeds/data
``unpaired``           mean a −    Welch's t (``scipy.stats.ttest_ind(equal_var=False)``)
                       mean b
``median`` (timings)   median      distribution-free order-statistic interval for the median
                                   (``scipy.stats.quantile_test``); unbounded on a side
                                   where n is too small (n ≥ 6 gives a two-sided interval)
``exact``              the value   none: a deterministic quantity (an exactness error, the
                                   iteration count of a deterministic solver, a byte count)
=====================  ==========  ========================================================

Student t rather than the bootstrap: the notebooks have 3–10 seeds, where percentile
bootstrap intervals are far too narrow; the t interval is exact for normal samples and the
usual choice at this n. Samples that are all equal give a zero-width interval at their value.

A claim over several settings (datasets × noise types, sizes) or with several conditions
holds iff every piece of evidence is reproduced, fails iff any is not reproduced, and is
inconclusive otherwise (:func:`combine`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
DIRECTIONS = (">=", ">", "<=", "<")
KINDS = ("mean", "paired", "unpaired", "median", "exact")
VERDICTS = ("reproduced", "inconclusive", "not_reproduced", "not_assessed")

_METHODS = {
    "mean": "Student t interval of the mean",
    "paired": "paired Student t interval of the mean difference",
    "unpaired": "Welch t interval of the difference of means",
    "median": "order-statistic interval of the median",
    "exact": "deterministic value",
}


def _as_samples(name: str, values) -> list[float]:
    if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):
        values = values.tolist()
    if isinstance(values, (int, float)):
        values = [values]
    try:
        samples = [float(v) for v in np.asarray(values, dtype=float).reshape(-1)]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from exc
    if not samples:
        raise ValueError(f"{name} is empty: a claim needs at least one sample")
    bad = [v for v in samples if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} has non-finite samples {bad}: NaN or inf evidence cannot decide a claim")
    return samples


def _bounds(interval) -> tuple[float, float]:
    low, high = float(interval.low), float(interval.high)
    return (-math.inf if math.isnan(low) else low, math.inf if math.isnan(high) else high)


def _constant(values: Sequence[float]) -> bool:
    return max(values) == min(values)


def interval(kind: str, a: Sequence[float], b: Sequence[float] | None = None) -> tuple[float, float, float]:
    """``(estimate, low, high)`` of the quantity by the rule of the module docstring.

    ``low``/``high`` are ``-inf``/``inf`` where the samples cannot bound that side (one sample).
    Raises ``ValueError`` for an unknown ``kind`` or unpaired arms of different lengths.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x = np.asarray(a, dtype=float)
    if kind == "exact":
        return float(x[0]), float(x[0]), float(x[0])
    if kind == "median":
        estimate = float(np.median(x))
        if _constant(a):
            return estimate, estimate, estimate
        ci = stats.quantile_test(x, q=estimate, p=0.5).confidence_interval(CONFIDENCE)
        return (estimate, *_bounds(ci))
    if kind == "unpaired":
        y = np.asarray(b, dtype=float)
        estimate = float(x.mean() - y.mean())
        if len(x) < 2 or len(y) < 2:
            return estimate, -math.inf, math.inf
        if _constant(a) and _constant(b):
            return estimate, estimate, estimate
        ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(CONFIDENCE)
        return (estimate, *_bounds(ci))
    if kind == "paired":
        y = np.asarray(b, dtype=float)
        if len(x) != len(y):
            raise ValueError(f"paired arms need one sample per seed in each, got {len(x)} and {len(y)}")
        x = x - y
    estimate = float(x.mean())
    if len(x) < 2:
        return estimate, -math.inf, math.inf
    if _constant(x.tolist()):
        return estimate, estimate, estimate
    with warnings.catch_warnings():  # near-constant samples: scipy warns, the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(CONFIDENCE)
    return (estimate, *_bounds(ci))


def decide(low: float, high: float, threshold: float, direction: str) -> str:
    """The verdict of an interval ``[low, high]`` against ``quantity <direction> threshold``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction in (">=", ">"):
        holds = low >= threshold if direction == ">=" else low > threshold
        fails = high < threshold if direction == ">=" else high <= threshold
    else:
        holds = high <= threshold if direction == "<=" else high < threshold
        fails = low > threshold if direction == "<=" else low >= threshold
    return "reproduced" if holds else ("not_reproduced" if fails else "inconclusive")


@dataclass(frozen=True)
class Evidence:
    """One quantity of a claim's criterion, its samples, interval and verdict.

    Build it with :meth:`mean`, :meth:`paired`, :meth:`unpaired`, :meth:`median` or
    :meth:`exact`; the estimate, the interval and the verdict are computed there and stored,
    and :meth:`recompute` derives them again from the samples alone.

    Attributes:
        label: what the quantity is, with its unit (``"digits, sym: ELR − CE final acc (pts)"``).
        kind: one of :data:`KINDS`.
        samples: the samples (for ``paired``/``unpaired``: arm a's).
        samples_b: arm b's samples (``paired``/``unpaired``), else ``None``.
        threshold, direction: the criterion ``quantity <direction> threshold``.
        estimate, low, high: the estimate and its 95 % interval (``±inf``: unbounded).
        n: the number of samples (pairs for ``paired``; the smaller arm for ``unpaired``).
        method: the interval's method, in words.
        verdict: ``reproduced``, ``not_reproduced`` or ``inconclusive``.
    """

    label: str
    kind: str
    samples: tuple[float, ...]
    samples_b: tuple[float, ...] | None
    threshold: float
    direction: str
    estimate: float
    low: float
    high: float
    n: int
    method: str
    verdict: str

    @classmethod
    def _build(cls, label, kind, a, b, threshold, direction) -> Evidence:
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        a = _as_samples(f"samples of {label!r}", a)
        b = None if b is None else _as_samples(f"samples_b of {label!r}", b)
        threshold = float(threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"threshold of {label!r} must be finite, got {threshold}")
        if kind == "exact" and len(a) != 1:
            raise ValueError(f"an exact quantity has one value, {label!r} got {len(a)}")
        estimate, low, high = interval(kind, a, b)
        n = len(a) if b is None else min(len(a), len(b))
        return cls(
            label, kind, tuple(a), None if b is None else tuple(b), threshold, direction,
            estimate, low, high, n, _METHODS[kind], decide(low, high, threshold, direction),
        )  # fmt: skip

    @classmethod
    def mean(cls, label: str, samples, *, threshold: float, direction: str) -> Evidence:
        """A stochastic quantity, one sample per seed: Student t interval of its mean."""
        return cls._build(label, "mean", samples, None, threshold, direction)

    @classmethod
    def paired(cls, label: str, a, b, *, threshold: float, direction: str) -> Evidence:
        """The difference a − b of two arms run on the same seeds and data (``a[i]``, ``b[i]``: seed i)."""
        return cls._build(label, "paired", a, b, threshold, direction)

    @classmethod
    def unpaired(cls, label: str, a, b, *, threshold: float, direction: str) -> Evidence:
        """The difference of the means of two independent arms (Welch)."""
        return cls._build(label, "unpaired", a, b, threshold, direction)

    @classmethod
    def median(cls, label: str, samples, *, threshold: float, direction: str) -> Evidence:
        """A timing or other heavy-tailed quantity measured repeatedly: interval of its median."""
        return cls._build(label, "median", samples, None, threshold, direction)

    @classmethod
    def exact(cls, label: str, value: float, *, threshold: float, direction: str) -> Evidence:
        """A quantity that does not depend on the seed, decided directly."""
        return cls._build(label, "exact", [value], None, threshold, direction)

    def recompute(self) -> Evidence:
        """The same evidence derived again from its samples, threshold and direction alone."""
        return Evidence._build(self.label, self.kind, self.samples, self.samples_b, self.threshold, self.direction)

    def describe(self) -> str:
        """``"2.51 [0.41, 4.6] (n=5) ≥ 3"``: estimate, interval, n and the criterion."""
        if self.kind == "exact":
            return f"{_num(self.estimate)} (exact) {_sign(self.direction)} {_num(self.threshold)}"
        return (
            f"{_num(self.estimate)} [{_num(self.low)}, {_num(self.high)}] (n={self.n}) "
            f"{_sign(self.direction)} {_num(self.threshold)}"
        )

    def to_dict(self) -> dict:
        """JSON form; infinite bounds become ``None``."""
        data = asdict(self)
        data["samples"] = list(self.samples)
        data["samples_b"] = None if self.samples_b is None else list(self.samples_b)
        for key in ("low", "high"):
            data[key] = None if math.isinf(data[key]) else data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        low = -math.inf if data["low"] is None else float(data["low"])
        high = math.inf if data["high"] is None else float(data["high"])
        samples_b = data.get("samples_b")
        return cls(
            data["label"], data["kind"], tuple(data["samples"]), None if samples_b is None else tuple(samples_b),
            float(data["threshold"]), data["direction"], float(data["estimate"]), low, high, int(data["n"]),
            data["method"], data["verdict"],
        )  # fmt: skip


def _sign(direction: str) -> str:
    return {">=": "≥", ">": ">", "<=": "≤", "<": "<"}[direction]


def _num(value: float) -> str:
    if math.isinf(value):
        return "−∞" if value < 0 else "∞"
    return f"{value:.4g}"


def combine(verdicts: Iterable[str]) -> str:
    """A claim's verdict from its pieces: reproduced iff all are, not reproduced iff any is."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("combine needs at least one verdict")
    unknown = [v for v in verdicts if v not in VERDICTS[:3]]
    if unknown:
        raise ValueError(f"verdicts must be among {VERDICTS[:3]}, got {unknown}")
    if any(v == "not_reproduced" for v in verdicts):
        return "not_reproduced"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


__all__ = ["CONFIDENCE", "DIRECTIONS", "Evidence", "KINDS", "VERDICTS", "combine", "decide", "interval"]
