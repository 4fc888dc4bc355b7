"""Input validation shared by the public functions: every rejection names the argument."""

from __future__ import annotations

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
