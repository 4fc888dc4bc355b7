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
        raise ValueError(f"{name} must lie in [{low}, {high}), got values in [{int(value.min())}, {int(value.max())}]")
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


# ---------------------------------------------------------------------------------------------
# Shared rules of the losses, divergences, RL objectives, optimizers, regularizers and data
# (issue 12): one reduction rule, one label rule, one mask rule, one half-precision rule, and
# scalar arguments checked with a message that names the argument, its value and the range.
# ---------------------------------------------------------------------------------------------

#: The reductions every loss accepts.
REDUCTIONS = ("none", "mean", "sum")


def check_choice(name: str, value, choices) -> str:
    """Check that an enumerated argument is one of ``choices`` (strings); ``ValueError`` naming
    ``name``, the value and the valid values otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of the valid values, got {value!r}; valid: {', '.join(map(str, choices))}"
        )
    return value


def check_reduction(reduction: str) -> str:
    """Check ``reduction`` against :data:`REDUCTIONS` (``"none"``, ``"mean"`` or ``"sum"``)."""
    return check_choice("reduction", reduction, REDUCTIONS)


def apply_reduction(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    """``losses`` itself (``"none"``), their mean or their sum; the one reduction rule of all losses."""
    check_reduction(reduction)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


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


def as_labels(name: str, value, *, ndim: int | None = None) -> torch.Tensor:
    """The label rule: class ids are a tensor of any integer dtype and are used as int64.

    ``bool`` is rejected, because a bool tensor is not a list of class ids; ``uint8`` (which
    torch would treat as a boolean mask when indexing) and the other integer dtypes are
    converted to int64, so they give what ``F.cross_entropy`` gives on the same ids.

    Raises:
        TypeError: ``value`` is not a tensor.
        ValueError: bool, floating or complex dtype, or not ``ndim`` dimensions.
    """
    check_tensor(name, value, ndim=ndim)
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise ValueError(
            f"{name} must hold integer class ids (any integer dtype, used as int64; bool is rejected), "
            f"got dtype {value.dtype}"
        )
    return value.long()


def as_mask(name: str, mask, shape) -> torch.Tensor:
    """The mask rule: a validity mask is ``bool`` or numeric with entries 0/1 only; returned as
    ``bool``. Callers select with ``torch.where`` on it *before* any arithmetic, so a padded
    position never reaches a value or a gradient, whatever it holds.

    Raises:
        ValueError: wrong shape, or a numeric mask with an entry other than 0 and 1.
    """
    check_tensor(name, mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex() or bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name} must be bool or hold only 0 and 1, got dtype {mask.dtype} with other entries")
    return mask != 0


def check_logits(name: str, value, *, ndim: int | None = None) -> torch.Tensor:
    """Check logits along the last dimension: floating, no NaN, no +inf, and at least one
    finite entry per row (−inf is a masked entry and is allowed). One device sync.

    Raises:
        ValueError: naming ``name`` and what is wrong.
    """
    check_tensor(name, value, ndim=ndim, floating=True)
    if value.numel():
        flags = torch.stack([(value.isnan() | (value == torch.inf)).any(), (value == -torch.inf).all(-1).any()])
        nan_or_inf, masked_row = flags.tolist()
        if nan_or_inf:
            raise ValueError(f"{name} has NaN or +inf entries (−inf, a masked entry, is allowed)")
        if masked_row:
            raise ValueError(f"{name} has a row whose entries are all −inf (every class masked)")
    return value


def upcast_half(value: torch.Tensor) -> torch.Tensor:
    """The half-precision rule: float16/bfloat16 tensors are computed in float32 (results are
    cast back to the input dtype by the caller); other dtypes are returned unchanged."""
    return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value


def check_logits_and_labels(logits, labels) -> torch.Tensor:
    """The classification-loss check: logits ``(B, K)`` by :func:`check_logits` (−inf masks a
    class), labels ``(B,)`` by :func:`as_labels`, each in ``[0, K)``. Returns the int64 labels.

    Raises:
        ValueError: naming ``logits`` or ``labels``.
    """
    check_logits("logits", logits, ndim=2)
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have {logits.shape[0]} entries (rows of logits), got {labels.shape[0]}")
    return check_range("labels", labels, 0, logits.shape[1])
