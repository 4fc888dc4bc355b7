"""Metrics against brute-force computations and torch.nn.functional."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regkit.workbook import (
    accuracy,
    aurc,
    expected_calibration_error,
    nll,
    noisy_label_fractions,
    pass_at_k,
    reliability_diagram,
    top_k_accuracy,
)


def brute_force_ece(probs, labels, n_bins):
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        members = [i for i in range(len(labels)) if lo < conf[i] <= hi]
        if members:
            acc = np.mean([pred[i] == labels[i] for i in members])
            avg = np.mean([conf[i] for i in members])
            total += len(members) / len(labels) * abs(acc - avg)
    return total


@pytest.mark.parametrize("seed", range(5))
def test_ece_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    probs = (3 * torch.randn(300, 6, generator=g, dtype=torch.float64)).softmax(1)
    labels = torch.randint(0, 6, (300,), generator=g)
    ref = brute_force_ece(probs.numpy(), labels.numpy(), 15)
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(ref, abs=1e-9)


def test_reliability_diagram_counts_and_perfect_calibration():
    probs = torch.tensor([[0.9, 0.1]] * 10)
    labels = torch.tensor([0] * 9 + [1])  # 90% correct at 90% confidence
    diagram = reliability_diagram(probs, labels, n_bins=10)
    assert diagram.count.sum() == 10 and diagram.count[8] == 10
    assert diagram.ece == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(diagram.accuracy[0])


def test_accuracy_and_nll_match_torch():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(50, 4, generator=g), torch.randint(0, 4, (50,), generator=g)
    assert accuracy(logits, labels) == pytest.approx((logits.argmax(1) == labels).double().mean().item())
    assert nll(logits, labels) == pytest.approx(F.cross_entropy(logits, labels).item())


def test_noisy_label_fractions():
    clean = torch.tensor([0, 1, 2, 3, 0])
    noisy = torch.tensor([1, 1, 0, 0, 0])  # examples 0, 2, 3 are corrupted
    logits = F.one_hot(torch.tensor([0, 1, 0, 2, 0]), 4).float()  # predicts: true, -, noisy, other
    assert noisy_label_fractions(logits, clean, noisy) == pytest.approx({"true": 1 / 3, "noisy": 1 / 3, "other": 1 / 3})
    with pytest.raises(ValueError, match="no noisy examples"):
        noisy_label_fractions(logits, clean, clean)


def test_aurc_against_brute_force():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(50, 4, generator=g).softmax(1)
    labels = torch.randint(0, 4, (50,), generator=g)
    conf, pred = probs.max(1)
    order = np.argsort(-conf.numpy(), kind="stable")
    wrong = (pred != labels).numpy()[order]
    expected = np.mean([wrong[: i + 1].mean() for i in range(50)])
    assert aurc(probs, labels) == pytest.approx(expected)


def test_top_k_accuracy_brute_force_and_ties():
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 4, (50, 7), generator=g).float()  # many ties
    labels = torch.randint(0, 7, (50,), generator=g)
    result = top_k_accuracy(scores, labels, [1, 3, 7])
    for k in (1, 3, 7):
        hits = [sum(scores[i, j] >= scores[i, labels[i]] for j in range(7) if j != labels[i]) < k for i in range(50)]
        assert result[k] == pytest.approx(np.mean(hits))
    assert result[7] == 1.0
    # a constant row is a miss below C; top-1 agrees with the arg-max accuracy when there are no ties
    assert top_k_accuracy(torch.zeros(3, 5), torch.tensor([0, 2, 4]), [1, 4, 5]) == {1: 0.0, 4: 0.0, 5: 1.0}
    logits = torch.randn(40, 6, generator=g)
    labels = torch.randint(0, 6, (40,), generator=g)
    assert top_k_accuracy(logits, labels, [1])[1] == pytest.approx(accuracy(logits, labels))
    assert top_k_accuracy(logits.softmax(1), labels, [2]) == top_k_accuracy(logits, labels, [2])


def test_pass_at_k_closed_form():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.1, 0.9]]))
    result = pass_at_k(logits, torch.tensor([0, 0]), [1, 2, 10])
    for k, value in result.items():
        assert math.isclose(value, ((1 - 0.5**k) + (1 - 0.9**k)) / 2, rel_tol=1e-7)  # float32 logits
