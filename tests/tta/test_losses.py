"""Entropy, TENT's loss, EATA's selection, weights, moving average and Fisher penalty, and the mean teachers'
symmetric cross-entropy against scipy, torch.nn.functional, brute-force loops and hand computations."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from regkit.tta import (
    eata_non_redundant,
    eata_reliable,
    eata_weights,
    fisher_penalty,
    prediction_entropy,
    symmetric_cross_entropy,
    tent_loss,
    update_probability_average,
)

DT = torch.float64


def _logits(n=12, c=5, seed=0, scale=2.0):
    return scale * torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=DT)


def test_entropy_matches_scipy_and_softmax(device):
    logits = _logits().to(device)
    ours = prediction_entropy(logits)
    probs = F.softmax(logits, dim=1)
    assert torch.allclose(ours, -(probs * probs.log()).sum(1), atol=1e-12)
    reference = scipy.stats.entropy(probs.cpu().numpy(), axis=1)
    np.testing.assert_allclose(ours.cpu().numpy(), reference, atol=1e-12)
    assert ours.device == logits.device and ours.dtype == DT
    assert float(tent_loss(logits)) == pytest.approx(float(reference.mean()), abs=1e-12)


def test_entropy_bounds_uniform_and_one_hot():
    c = 7
    assert torch.allclose(prediction_entropy(torch.zeros(3, c, dtype=DT)), torch.full((3,), math.log(c), dtype=DT))
    peaked = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=DT)
    assert float(prediction_entropy(peaked)) == 0.0


def test_entropy_finite_for_masked_and_peaked_logits_with_finite_gradient():
    logits = torch.tensor([[2.0, -math.inf, 0.5, -math.inf], [800.0, 0.0, -5.0, 1.0]], dtype=DT, requires_grad=True)
    h = prediction_entropy(logits)
    assert bool(torch.isfinite(h).all())
    # the masked row equals the entropy of the softmax over its finite classes
    finite = torch.tensor([2.0, 0.5], dtype=DT)
    assert float(h[0].detach()) == pytest.approx(float(scipy.stats.entropy(F.softmax(finite, 0).numpy())), abs=1e-12)
    # the naive formula gives NaN on both rows, which is what the log_softmax form avoids
    naive = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
    assert bool(torch.isnan(naive[0]))
    h.sum().backward()
    assert bool(torch.isfinite(logits.grad).all())
    assert logits.grad[0, 1] == 0 and logits.grad[0, 3] == 0


def test_entropy_gradient_by_finite_differences():
    logits = _logits(4, 3, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(prediction_entropy, (logits,))


def test_reliable_and_weights_against_brute_force():
    logits = _logits(40, 10, seed=2, scale=3.0)
    entropy = prediction_entropy(logits)
    e0 = 0.4 * math.log(10)
    mask = eata_reliable(entropy, e0)
    weights = eata_weights(entropy, e0)
    for i in range(40):
        h = float(scipy.stats.entropy(F.softmax(logits[i], 0).numpy()))
        assert bool(mask[i]) == (h < e0)
        assert float(weights[i]) == pytest.approx(1.0 / math.exp(h - e0), rel=1e-10)
    assert 0 < int(mask.sum()) < 40  # the example exercises both sides of the threshold
    assert bool((weights[mask] > 1).all()) and bool((weights[~mask] <= 1).all())


def test_weights_carry_no_gradient():
    logits = _logits(5, 4, seed=3).requires_grad_(True)
    entropy = prediction_entropy(logits)
    weights = eata_weights(entropy, 0.5)
    assert not weights.requires_grad
    # the gradient of Σ S_i H_i is Σ S_i ∇H_i: the weights act as constants
    expected = torch.autograd.grad(entropy, logits, grad_outputs=weights, retain_graph=True)[0]
    (weights * entropy).sum().backward()
    assert torch.allclose(logits.grad, expected, atol=1e-12)


def test_non_redundant_against_brute_force_cosine():
    probs = F.softmax(_logits(30, 6, seed=4), dim=1)
    average = F.softmax(torch.randn(6, generator=torch.Generator().manual_seed(5), dtype=DT), dim=0)
    eps = 0.8
    mask = eata_non_redundant(probs, average, eps)
    for i in range(30):
        p, m = probs[i].numpy(), average.numpy()
        cosine = p @ m / (np.linalg.norm(p) * np.linalg.norm(m))
        assert bool(mask[i]) == (abs(cosine) < eps)
    assert 0 < int(mask.sum()) < 30
    assert bool(eata_non_redundant(probs, None, eps).all())


def test_probability_average_updates():
    probs = F.softmax(_logits(8, 3, seed=6), dim=1)
    first = update_probability_average(None, probs)
    assert torch.allclose(first, probs.mean(0))
    second = update_probability_average(first, probs[:3], momentum=0.9)
    assert torch.allclose(second, 0.9 * first + 0.1 * probs[:3].mean(0))
    assert update_probability_average(None, probs[:0]) is None
    assert torch.equal(update_probability_average(first, probs[:0]), first)


def test_fisher_penalty_against_hand_computation():
    theta = [
        torch.tensor([1.0, 2.0], dtype=DT, requires_grad=True),
        torch.tensor([[3.0]], dtype=DT, requires_grad=True),
    ]
    fisher = [torch.tensor([0.5, 2.0], dtype=DT), torch.tensor([[4.0]], dtype=DT)]
    anchors = [torch.tensor([0.0, 1.0], dtype=DT), torch.tensor([[1.0]], dtype=DT)]
    # 0.5·1² + 2·1² + 4·2² = 18.5, times beta = 3
    value = fisher_penalty(theta, fisher, anchors, beta=3.0)
    assert float(value.detach()) == pytest.approx(55.5)
    value.backward()  # gradient 2·β·ω·(θ − θ⁰)
    assert torch.allclose(theta[0].grad, torch.tensor([3.0, 12.0], dtype=DT))
    assert torch.allclose(theta[1].grad, torch.tensor([[48.0]], dtype=DT))


def test_symmetric_cross_entropy_by_hand():
    # p = softmax(s), q = softmax(t) for one row, then −½ Σ q log p − ½ Σ p log q with plain floats
    s, t = [1.0, -0.5, 2.0], [0.3, 0.8, -1.2]
    p = [math.exp(v) / sum(math.exp(w) for w in s) for v in s]
    q = [math.exp(v) / sum(math.exp(w) for w in t) for v in t]
    forward = -sum(qk * math.log(pk) for pk, qk in zip(p, q))
    backward = -sum(pk * math.log(qk) for pk, qk in zip(p, q))
    s_t, t_t = torch.tensor([s], dtype=DT), torch.tensor([t], dtype=DT)
    assert float(symmetric_cross_entropy(s_t, t_t)) == pytest.approx(0.5 * forward + 0.5 * backward, rel=1e-12)
    assert float(symmetric_cross_entropy(s_t, t_t, 0.2)) == pytest.approx(0.8 * forward + 0.2 * backward, rel=1e-12)
    assert forward != pytest.approx(backward, rel=1e-3)  # the direction of the two terms matters here


def test_symmetric_cross_entropy_ends_are_the_two_soft_cross_entropies(device):
    student, teacher = _logits(seed=7).to(device), _logits(seed=8).to(device)
    # α = 0: the student against the teacher's soft labels (CoTTA); α = 1: the teacher against the student's
    ce = F.cross_entropy(student, teacher.softmax(1), reduction="none")
    reverse = F.cross_entropy(teacher, student.softmax(1), reduction="none")
    assert torch.allclose(symmetric_cross_entropy(student, teacher, 0.0, reduction="none"), ce, atol=1e-12)
    assert torch.allclose(symmetric_cross_entropy(student, teacher, 1.0, reduction="none"), reverse, atol=1e-12)
    assert not torch.allclose(ce, reverse, atol=1e-3)
    sce = symmetric_cross_entropy(student, teacher, reduction="none")
    assert torch.allclose(sce, 0.5 * (ce + reverse), atol=1e-12)
    assert torch.allclose(sce, symmetric_cross_entropy(teacher, student, reduction="none"), atol=1e-12)  # symmetric
    assert float(symmetric_cross_entropy(student, teacher)) == pytest.approx(float(sce.mean()), abs=1e-12)
    assert float(symmetric_cross_entropy(student, teacher, reduction="sum")) == pytest.approx(float(sce.sum()))


def test_symmetric_cross_entropy_gradient_and_masked_classes():
    student = _logits(4, 3, seed=9).requires_grad_(True)
    teacher = _logits(4, 3, seed=10)
    assert torch.autograd.gradcheck(lambda s: symmetric_cross_entropy(s, teacher, 0.3, reduction="none"), (student,))
    # the α = 0 gradient in the student's logits is (p − q)/N, the soft cross-entropy's
    (grad,) = torch.autograd.grad(symmetric_cross_entropy(student, teacher, 0.0), student)
    assert torch.allclose(grad, (student.softmax(1) - teacher.softmax(1)).detach() / 4, atol=1e-12)
    # a class the teacher masks adds 0 to the forward term; a class the student masks where q > 0 gives +inf
    masked_teacher = torch.tensor([[1.0, -math.inf, 0.0]], dtype=DT)
    free = torch.tensor([[0.5, 2.0, -1.0]], dtype=DT)
    value = symmetric_cross_entropy(free, masked_teacher, 0.0)
    q = F.softmax(torch.tensor([1.0, 0.0], dtype=DT), 0)
    assert float(value) == pytest.approx(-float((q * F.log_softmax(free[0], 0)[[0, 2]]).sum()), abs=1e-12)
    assert math.isinf(float(symmetric_cross_entropy(masked_teacher, free, 0.0)))
    assert math.isinf(float(symmetric_cross_entropy(free, masked_teacher, 0.5)))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), -0.1), "alpha"),
        (lambda: symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), 1.1), "alpha"),
        (lambda: symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), math.nan), "alpha"),
        (lambda: symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4)), "teacher_logits"),
        (lambda: symmetric_cross_entropy(torch.zeros(2, 1), torch.zeros(2, 1)), "student_logits"),
        (lambda: symmetric_cross_entropy(torch.tensor([[0.0, math.nan]]), torch.zeros(1, 2)), "student_logits"),
        (lambda: symmetric_cross_entropy(torch.zeros(1, 2), torch.tensor([[math.inf, 0.0]])), "teacher_logits"),
        (lambda: symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg"), "reduction"),
    ],
)
def test_symmetric_cross_entropy_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: prediction_entropy(torch.zeros(4)), "logits"),
        (lambda: prediction_entropy(torch.zeros(4, 1)), "logits"),
        (lambda: prediction_entropy(torch.tensor([[0.0, math.nan]])), "logits"),
        (lambda: prediction_entropy(torch.tensor([[0.0, math.inf]])), "logits"),
        (lambda: prediction_entropy(torch.full((1, 3), -math.inf)), "logits"),
        (lambda: prediction_entropy(torch.zeros(2, 3, dtype=torch.int64)), "logits"),
        (lambda: eata_reliable(torch.ones(3), 0.0), "e_margin"),
        (lambda: eata_reliable(torch.ones(3), -1.0), "e_margin"),
        (lambda: eata_reliable(torch.tensor([-0.1]), 0.5), "entropy"),
        (lambda: eata_weights(torch.ones(2, 2), 0.5), "entropy"),
        (lambda: eata_non_redundant(torch.ones(2, 3), None, 0.0), "d_margin"),
        (lambda: eata_non_redundant(torch.ones(2, 3), None, 1.5), "d_margin"),
        (lambda: eata_non_redundant(torch.ones(2, 3), torch.ones(4), 0.5), "average"),
        (lambda: update_probability_average(None, torch.ones(2, 3), momentum=1.5), "momentum"),
        (lambda: fisher_penalty([torch.ones(2)], [torch.ones(3)], [torch.ones(2)], 1.0), "fisher"),
        (lambda: fisher_penalty([torch.ones(2)], [torch.ones(2)], [], 1.0), "anchors"),
        (lambda: fisher_penalty([torch.ones(2)], [-torch.ones(2)], [torch.ones(2)], 1.0), "fisher"),
        (lambda: fisher_penalty([torch.ones(2)], [torch.ones(2)], [torch.ones(2)], -1.0), "beta"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
