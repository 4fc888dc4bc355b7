"""Label noise: exact rates, flips only to other classes, determinism."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regkit.data import MNIST_PAIR_FLIPS, asymmetric_noise, symmetric_noise


def labels_of(n, c=10, seed=0):
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), rate=st.floats(0, 1), c=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_symmetric_rate_is_exact(n, rate, c, seed):
    labels = labels_of(n, c, seed)
    noisy, mask = symmetric_noise(labels, rate, c, generator=torch.Generator().manual_seed(seed))
    assert int(mask.sum()) == round(rate * n)
    assert torch.equal(mask, noisy != labels)
    assert int(noisy.min()) >= 0 and int(noisy.max()) < c


def test_symmetric_flips_are_uniform_over_other_classes():
    labels = torch.zeros(60000, dtype=torch.int64)
    noisy, mask = symmetric_noise(labels, 0.5, 4, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(noisy[mask], minlength=4).float()
    assert counts[0] == 0
    assert torch.allclose(counts[1:] / counts[1:].sum(), torch.full((3,), 1 / 3), atol=0.01)


def test_same_seed_same_noise_and_different_seed_differs():
    labels = labels_of(500)
    a = symmetric_noise(labels, 0.4, 10, generator=torch.Generator().manual_seed(3))[0]
    b = symmetric_noise(labels, 0.4, 10, generator=torch.Generator().manual_seed(3))[0]
    c = symmetric_noise(labels, 0.4, 10, generator=torch.Generator().manual_seed(4))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(10, 500), rate=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_asymmetric_rate_is_exact_per_source_class(n, rate, seed):
    labels = labels_of(n, 10, seed)
    noisy, mask = asymmetric_noise(
        labels, rate, 10, generator=torch.Generator().manual_seed(seed), flips=MNIST_PAIR_FLIPS
    )
    for source, target in MNIST_PAIR_FLIPS.items():
        members = labels == source
        assert int((mask & members).sum()) == round(rate * int(members.sum()))
        assert torch.all(noisy[mask & members] == target)
    untouched = ~torch.isin(labels, torch.tensor(list(MNIST_PAIR_FLIPS)))
    assert not bool(mask[untouched].any())


def test_asymmetric_default_cycle_gives_the_overall_rate():
    labels = torch.arange(10).repeat(100)
    noisy, mask = asymmetric_noise(labels, 0.3, 10, generator=torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 300
    assert torch.all(noisy[mask] == (labels[mask] + 1) % 10)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: symmetric_noise(torch.tensor([0, 1, 2]), 1.5, 3, generator=g), "rate"),
        (lambda g: symmetric_noise(torch.tensor([0, 1, 5]), 0.5, 3, generator=g), "labels"),
        (lambda g: symmetric_noise(torch.tensor([[0, 1]]), 0.5, 3, generator=g), "labels"),
        (lambda g: symmetric_noise(torch.tensor([0.0, 1.0]), 0.5, 3, generator=g), "labels"),
        (lambda g: asymmetric_noise(torch.tensor([0, 1]), 0.5, 3, generator=g, flips={0: 0}), "flips"),
        (lambda g: asymmetric_noise(torch.tensor([0, 1]), 0.5, 3, generator=g, flips={0: 7}), "flips"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.Generator().manual_seed(0))
