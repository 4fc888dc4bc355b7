"""Mixing augmentations: CutMix, MixUp, Cutout and CutMix's application probability."""

import numpy as np
import pytest
import torch

from regkit.regularizers import (
    cutmix,
    cutout,
    maybe_cutmix,
    mixup,
)


def batch(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.randint(0, 5, (shape[0],), generator=g)


@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (16, 2, 40)])
def test_cutmix_mixes_labels_by_the_pasted_area(shape):
    x, y = batch(shape)
    # distinct constant inputs make the pasted region identifiable
    x = torch.arange(1.0, shape[0] + 1).view(-1, *([1] * (len(shape) - 1))).expand(shape).clone()
    for seed in range(20):
        mixed, targets, kept = cutmix(x, y, 5, alpha=1.0, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(targets.sum(1), torch.ones(shape[0]))
        own = (mixed == x).float().flatten(1).mean(1)  # share of each example left in place
        same_source = own == 1  # the permutation may map an example to itself
        assert torch.allclose(own[~same_source], torch.full_like(own[~same_source], kept))
        onehot = torch.nn.functional.one_hot(y, 5).float()
        assert torch.all(targets >= onehot * kept - 1e-6)


def test_cutmix_box_area_follows_lambda_before_clipping():
    x, y = batch((8, 1, 64, 64))
    # unclipped boxes (centre far from the edges is not controllable); clipping only shrinks the box
    kept = [cutmix(x, y, 5, generator=torch.Generator().manual_seed(s))[2] for s in range(200)]
    assert 0.45 < np.mean(kept) < 0.75  # λ ~ Beta(1, 1) has mean 0.5; clipping pastes less, keeping more


def test_mixup_targets_and_inputs_are_the_same_convex_combination():
    x, y = batch((10, 1, 40))
    _mixed, targets, lam = mixup(x, y, 5, alpha=0.4, generator=torch.Generator().manual_seed(3))
    assert 0 <= lam <= 1 and torch.allclose(targets.sum(1), torch.ones(10))
    onehot = torch.nn.functional.one_hot(y, 5).float()
    perm_targets = (targets - lam * onehot) / (1 - lam)
    partner = perm_targets.argmax(1)
    assert torch.allclose(perm_targets, torch.nn.functional.one_hot(partner, 5).float(), atol=1e-5)


def test_cutout_zeroes_a_box_and_keeps_one_hot_targets():
    x, y = batch((6, 1, 10, 10))
    x = x + 1  # no zeros to begin with
    out, targets, kept = cutout(x, y, 5, size=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(targets, torch.nn.functional.one_hot(y, 5).float())
    zero_share = (out == 0).float().flatten(1).mean(1)
    assert torch.all(zero_share > 0) and torch.all(zero_share <= 0.25 + 1e-6)
    assert abs(kept - float(1 - zero_share.mean())) < 1e-6


def test_same_generator_same_augmentation():
    x, y = batch((8, 1, 8, 8))
    a = cutmix(x, y, 5, generator=torch.Generator().manual_seed(1))
    b = cutmix(x, y, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda: mixup(*batch((4, 1, 8)), 5, alpha=0.0, generator=torch.Generator()), "alpha"),
        (lambda: cutmix(*batch((4, 1, 8)), 5, alpha=-1.0, generator=torch.Generator()), "alpha"),
        (lambda: cutmix(batch((4, 1, 8))[0], torch.tensor([0, 1, 2]), 5, generator=torch.Generator()), "labels"),
        (lambda: cutmix(batch((4, 1, 8))[0], torch.tensor([0, 1, 2, 7]), 5, generator=torch.Generator()), "labels"),
        (lambda: cutout(torch.rand(4, 8), torch.tensor([0, 1, 2, 3]), 5, generator=torch.Generator()), "x"),
    ],
)
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


@pytest.mark.parametrize("prob", [0.0, 0.3, 0.5, 1.0])
def test_maybe_cutmix_applies_cutmix_with_probability_prob(prob):
    """Against the official rule computed independently: r = U[0, 1) drawn first, CutMix iff r < prob,
    and then CutMix's own draws from the same generator."""
    x, y = torch.randn(6, 1, 8, 8), torch.arange(6) % 5
    applied = 0
    for seed in range(400):
        result = maybe_cutmix(x, y, 5, prob=prob, alpha=1.0, generator=torch.Generator().manual_seed(seed))
        reference = torch.Generator().manual_seed(seed)
        r = torch.rand(1, generator=reference).item()
        assert (result is not None) == (r < prob)
        if result is not None:
            applied += 1
            expected = cutmix(x, y, 5, alpha=1.0, generator=reference)
            assert torch.equal(result[0], expected[0]) and torch.equal(result[1], expected[1])
            assert result[2] == expected[2]
    assert abs(applied / 400 - prob) <= 4 * (prob * (1 - prob) / 400) ** 0.5 + 1e-12


def test_maybe_cutmix_rejects_bad_arguments():
    x, y = torch.randn(4, 1, 8), torch.arange(4)
    for prob in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="prob"):
            maybe_cutmix(x, y, 5, prob=prob, generator=torch.Generator())
    with pytest.raises(ValueError, match="labels"):
        maybe_cutmix(x, torch.tensor([0, 1, 2]), 5, prob=0.0, generator=torch.Generator())
