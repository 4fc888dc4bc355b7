"""Input validation shared by the public functions: every rejection names the argument."""

from __future__ import annotations

import math
import numbers

import torch


def check_tensor(name: str, value, *, ndim: int | None = None, floating: bool | None = None) -> torch.Tensor:
    """Check that ``value`` is a tensor of rank ``ndim`` and the right dtype kind."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if floating is True and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if floating is False and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise ValueError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    return value


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """Reject NaN and infinite entries (one device sync)."""
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} has {bad} non-finite entries (NaN or inf)")
    return value


def check_range(name: str, value: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """Check that every entry of an integer tensor lies in ``[low, high)``."""
    if value.numel() and (int(value.min()) < low or int(value.max()) >= high):
        raise ValueError(
            f"{name} must lie in [{low}, {high}), got values in [{int(value.min())}, {int(value.max())}]"
        )
    return value


def check_probability(name: str, value: float, *, low_open: bool = False, high_open: bool = False) -> float:
    """Check that a scalar lies in [0, 1] (optionally open at either end)."""
    value = float(value)
    ok_low = value > 0 if low_open else value >= 0
    ok_high = value < 1 if high_open else value <= 1
    if not (ok_low and ok_high):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_number(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float | int:
    """Check a numeric scalar argument and return it as ``float`` (``int`` when ``integer``).

    ``value`` may be a Python or NumPy number or a one-element tensor. It must lie in the
    interval from ``low`` to ``high`` (``None``: unbounded on that side), closed unless
    ``low_open``/``high_open``; infinity is accepted only as a closed bound that is itself
    infinite (``high=math.inf``). With ``integer``, ``value`` must be integral (``3`` or
    ``3.0``, not ``2.5``). Raises ``ValueError`` naming ``name``, the value and the valid range
    (``TypeError``, with the same message, for a value that is not a real number, e.g. a bool
    or a string).
    """
    kind = "an integer" if integer else "a number"
    interval = (
        ("(" if low_open or low is None else "[")
        + ("-inf" if low is None else f"{low:g}")
        + ", "
        + ("inf" if high is None else f"{high:g}")
        + (")" if high_open or high is None else "]")
    )
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind} in {interval}, got {value!r}")
    number = float(value)
    inside = not math.isnan(number)
    if inside and low is not None:
        inside = number > low if low_open else number >= low
    if inside and high is not None:
        inside = number < high if high_open else number <= high
    if inside and math.isinf(number):  # only an infinite closed bound admits infinity
        inside = number == (high if number > 0 else low)
    if inside and integer:
        inside = number.is_integer()
    if not inside:
        raise ValueError(f"{name} must be {kind} in {interval}, got {value!r}")
    return int(number) if integer else number


def check_option(name: str, value, options) -> str:
    """Check that ``value`` is one of ``options`` (strings); raises ``ValueError`` naming
    ``name``, the value and the valid options."""
    if not isinstance(value, str) or value not in options:
        valid = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")
    return value
