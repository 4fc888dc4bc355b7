r"""Synthetic label noise with an exact, not expected, noise rate.

* Symmetric: exactly :math:`\operatorname{round}(r\,n)` examples, drawn uniformly without
  replacement, get a label drawn uniformly from the *other* :math:`C-1` classes.
* Asymmetric (class-dependent, "pair flip"): for each source class :math:`c` of the map,
  exactly :math:`\operatorname{round}(r\,n_c)` of its examples are relabelled
  :math:`\text{map}(c)`, as in Patrini et al. (2017) and the ELR paper's asymmetric setting.
  Classes outside the map are untouched, so the overall rate is below :math:`r`.

Both return ``(noisy_labels, noise_mask)`` with ``noise_mask[i] = noisy_labels[i] != labels[i]``.
"""

from __future__ import annotations

import torch

from regkit._checks import as_labels, check_number, check_probability, check_range

#: The MNIST pair flips used in the literature (2→7, 3→8, 5↔6, 7→1): similar-looking digits.
MNIST_PAIR_FLIPS: dict[int, int] = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}


def _check_labels(labels, num_classes: int) -> torch.Tensor:
    """Labels as int64 (any integer dtype; bool rejected), checked against ``num_classes``."""
    labels = as_labels("labels", labels, ndim=1)
    check_number("num_classes", num_classes, low=2, integer=True)
    check_range("labels", labels, 0, num_classes)
    return labels


def symmetric_noise(
    labels: torch.Tensor, rate: float, num_classes: int, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip exactly ``round(rate * n)`` labels, each to a uniformly drawn different class."""
    labels = _check_labels(labels, num_classes)
    num_classes = int(num_classes)
    check_probability("rate", rate)
    n = labels.shape[0]
    flipped = torch.randperm(n, generator=generator)[: round(rate * n)]
    # an offset in [1, C) added mod C gives a uniform draw among the other classes
    offset = torch.randint(1, num_classes, (flipped.numel(),), generator=generator)
    noisy = labels.clone()
    noisy[flipped.to(labels.device)] = (labels[flipped.to(labels.device)] + offset.to(labels.device)) % num_classes
    return noisy, noisy != labels


def asymmetric_noise(
    labels: torch.Tensor,
    rate: float,
    num_classes: int,
    *,
    generator: torch.Generator,
    flips: dict[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relabel exactly ``round(rate * n_c)`` examples of each source class ``c`` as ``flips[c]``.

    ``flips`` defaults to the cyclic map ``c → (c + 1) mod C`` (every class is a source, so
    the overall rate is ``rate`` up to rounding). Sources are chosen on the clean labels.
    """
    labels = _check_labels(labels, num_classes)
    num_classes = int(num_classes)
    check_probability("rate", rate)
    if flips is None:
        flips = {c: (c + 1) % num_classes for c in range(num_classes)}
    for source, target in flips.items():
        if not (0 <= source < num_classes and 0 <= target < num_classes) or source == target:
            raise ValueError(f"flips must map a class in [0, {num_classes}) to another class, got {source}->{target}")
    noisy = labels.clone()
    for source in sorted(flips):
        members = torch.nonzero(labels.cpu() == source).flatten()
        chosen = members[torch.randperm(members.numel(), generator=generator)[: round(rate * members.numel())]]
        noisy[chosen.to(labels.device)] = flips[source]
    return noisy, noisy != labels
