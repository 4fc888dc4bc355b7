"""SFDA's entropy + class-ratio prior loss against scipy and brute force, its gradient, the collapse it prevents,
and the SFDA adaptation wrapper against a hand-written step."""

import copy
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
from _tta_models import DT, batch, bn_model, entropy, same, state

from regkit.tta import SFDA, Tent, class_ratio, class_ratio_kl, sfda_loss, tent_loss


def _logits(*shape, seed=0, scale=2.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def test_entropy_term_matches_scipy_for_classification_and_segmentation():
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=DT)
    for logits in (_logits(10, 3), _logits(2, 3, 4, 5, seed=1)):
        probs = logits.softmax(1).numpy()
        reference = scipy.stats.entropy(probs, axis=1).mean()  # per sample / per pixel, then the mean
        assert float(sfda_loss(logits, prior, kl_weight=0.0)) == pytest.approx(reference, abs=1e-12)
    # class-weighted entropy, as the official loss_se = −Σ w_c p log p / Σ p
    logits, weights = _logits(2, 3, 4, 4, seed=2), torch.tensor([0.1, 0.9, 0.5], dtype=DT)
    probs = logits.softmax(1).numpy()
    brute = -(weights.numpy()[None, :, None, None] * probs * np.log(probs)).sum() / probs.sum()
    assert float(sfda_loss(logits, prior, 0.0, class_weights=weights)) == pytest.approx(brute, abs=1e-12)


def test_kl_term_matches_scipy_rel_entr_in_the_predicted_to_prior_direction():
    logits = _logits(3, 4, 5, 6, seed=3)
    probs = logits.softmax(1).numpy()
    ratio = probs.reshape(3, 4, -1).mean(axis=2)  # per image, by brute force
    np.testing.assert_allclose(class_ratio(logits).numpy(), ratio, atol=1e-14)
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=DT)
    expected = scipy.special.rel_entr(ratio, prior.numpy()[None]).sum(axis=1).mean()
    assert float(class_ratio_kl(logits, prior)) == pytest.approx(expected, abs=1e-12)
    reverse = scipy.special.rel_entr(prior.numpy()[None], ratio).sum(axis=1).mean()
    assert abs(expected - reverse) > 1e-3  # the direction is checked, not only the value
    # per-image priors (N, C), and the loss is entropy + λ · KL
    per_image = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25] * 4, [0.1, 0.2, 0.3, 0.4]], dtype=DT)
    expected = scipy.special.rel_entr(ratio, per_image.numpy()).sum(axis=1).mean()
    assert float(class_ratio_kl(logits, per_image)) == pytest.approx(expected, abs=1e-12)
    total = scipy.stats.entropy(probs, axis=1).mean() + 2.5 * expected
    assert float(sfda_loss(logits, per_image, kl_weight=2.5)) == pytest.approx(total, abs=1e-12)
    # classification: one ratio, the batch mean
    flat = _logits(12, 4, seed=4)
    batch_ratio = flat.softmax(1).mean(0).numpy()
    expected = scipy.special.rel_entr(batch_ratio, prior.numpy()).sum()
    assert float(class_ratio_kl(flat, prior)) == pytest.approx(expected, abs=1e-12)


def test_kl_is_zero_when_the_predicted_ratio_equals_the_prior():
    prior = torch.tensor([0.6, 0.3, 0.1], dtype=DT)
    shift = torch.tensor([0.2, -0.1, -0.1], dtype=DT)
    # two pixels per image whose probabilities differ but average to the prior
    pixels = torch.stack([prior + shift, prior - shift], dim=-1).log()  # (C, 2)
    logits = pixels.expand(2, 3, 2).unsqueeze(-1).contiguous()  # (N, C, 2, 1)
    assert torch.allclose(class_ratio(logits), prior.expand(2, 3), atol=1e-15)
    assert abs(float(class_ratio_kl(logits, prior))) < 1e-15
    assert float(class_ratio_kl(logits, torch.tensor([0.5, 0.3, 0.2], dtype=DT))) > 1e-3


def test_kl_gradient_moves_the_predicted_ratio_toward_the_prior():
    logits = _logits(2, 3, 4, 4, seed=5).requires_grad_(True)
    prior = torch.tensor([0.2, 0.5, 0.3], dtype=DT)
    kl = class_ratio_kl(logits, prior)
    (grad,) = torch.autograd.grad(kl, logits)
    stepped = (logits - 0.5 * grad).detach()
    before = (class_ratio(logits.detach()) - prior).abs().sum()
    after = (class_ratio(stepped) - prior).abs().sum()
    assert float(class_ratio_kl(stepped, prior)) < float(kl.detach()) and float(after) < float(before)
    assert torch.autograd.gradcheck(lambda z: sfda_loss(z, prior, 1.5), (_logits(2, 3, 2, 2, seed=6).requires_grad_(),))


def test_without_the_prior_the_loss_is_tent_loss_with_the_same_gradient():
    logits = _logits(9, 5, seed=7).requires_grad_(True)
    prior = torch.full((5,), 0.2, dtype=DT)
    ours = sfda_loss(logits, prior, kl_weight=0.0)
    reference = tent_loss(logits)
    assert float(ours.detach()) == float(reference.detach())
    g_ours, g_ref = torch.autograd.grad(ours, logits)[0], torch.autograd.grad(reference, logits)[0]
    assert torch.equal(g_ours, g_ref)


def _adapt_bias(kl_weight, steps=100):
    """Adapt only the bias of a 1-D source classifier on an 80/20 target, by SGD on the SFDA loss."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(80, generator=g, dtype=DT) - 1, torch.randn(20, generator=g, dtype=DT) + 1])
    labels = torch.cat([torch.zeros(80), torch.ones(20)]).long()
    prior = torch.tensor([0.8, 0.2], dtype=DT)
    bias = torch.zeros((), dtype=DT, requires_grad=True)
    optimizer = torch.optim.SGD([bias], lr=3.0)
    for _ in range(steps):
        logits = torch.stack([torch.zeros_like(x), 2 * x + bias], dim=1)
        optimizer.zero_grad()
        sfda_loss(logits, prior, kl_weight).backward()
        optimizer.step()
    with torch.no_grad():
        logits = torch.stack([torch.zeros_like(x), 2 * x + bias], dim=1)
        predicted = logits.argmax(1)
        return float((predicted == 1).double().mean()), float((predicted == labels).double().mean())


def test_entropy_alone_collapses_to_the_dominant_class_and_the_prior_prevents_it():
    minority_entropy, accuracy_entropy = _adapt_bias(0.0)
    minority_prior, accuracy_prior = _adapt_bias(5.0)
    assert minority_entropy == 0.0  # every target sample predicted as the dominant class
    assert minority_prior >= 0.1  # both classes survive, near the prior's 0.2
    assert accuracy_prior > accuracy_entropy


# ---------------------------------------------------------------------------------------------------------------------
def test_sfda_wrapper_step_equals_a_hand_written_step():
    model, x, lr = bn_model(), batch(), 0.5
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DT)
    method = SFDA(model, prior, kl_weight=2.0, lr=lr, momentum=0.0)
    logits = method(x)
    reference = copy.deepcopy(model).train()
    out = reference(x)
    ratio = out.softmax(1).mean(0)
    loss = entropy(out).mean() + 2.0 * (ratio * (ratio / prior).log()).sum()
    gw, gb = torch.autograd.grad(loss, [reference[1].weight, reference[1].bias])
    assert torch.allclose(logits, out.detach(), atol=1e-12)
    assert torch.allclose(method.model[1].weight, model[1].weight - lr * gw, atol=1e-12)
    assert torch.allclose(method.model[1].bias, model[1].bias - lr * gb, atol=1e-12)
    assert int(method.num_updates) == 1 and int(method.num_backward) == 8
    assert torch.equal(method.prior, prior) and "prior" in method.state_dict()
    # without the prior term, SFDA is TENT
    plain, sfda0 = Tent(model, lr=lr, momentum=0.0), SFDA(model, prior, kl_weight=0.0, lr=lr, momentum=0.0)
    plain(x)
    sfda0(x)
    assert torch.allclose(plain.model[1].weight, sfda0.model[1].weight, atol=1e-14)


def test_sfda_wrapper_rejects_a_nan_batch_before_any_change():
    method = SFDA(bn_model(), torch.full((4,), 0.25, dtype=DT), lr=0.5)
    method(batch())
    saved = state(method)
    bad = batch(seed=2)
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="x"):
        method(bad)
    assert same(state(method), saved)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: class_ratio_kl(_logits(4, 3), torch.tensor([0.5, 0.3, 0.3], dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(4, 3), torch.tensor([0.5, 0.5, 0.0], dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(4, 3), torch.tensor([1.2, -0.1, -0.1], dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(4, 3), torch.tensor([0.5, 0.5], dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(4, 3), torch.full((4, 3), 1 / 3, dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(2, 3, 2, 2), torch.full((3, 3), 1 / 3, dtype=DT)), "prior"),
        (lambda: class_ratio_kl(_logits(4, 3), torch.tensor([0, 1, 0])), "prior"),
        (lambda: sfda_loss(_logits(4, 3), torch.full((3,), 1 / 3, dtype=DT), kl_weight=-1.0), "kl_weight"),
        (lambda: sfda_loss(_logits(4, 3), torch.full((3,), 1 / 3, dtype=DT), kl_weight=math.inf), "kl_weight"),
        (lambda: sfda_loss(_logits(4, 3), torch.full((3,), 1 / 3), 1.0, torch.ones(2, dtype=DT)), "class_weights"),
        (lambda: sfda_loss(_logits(4, 3), torch.full((3,), 1 / 3), 1.0, -torch.ones(3, dtype=DT)), "class_weights"),
        (lambda: sfda_loss(_logits(4), torch.full((3,), 1 / 3, dtype=DT)), "logits"),
        (lambda: sfda_loss(torch.tensor([[0.0, math.nan, 0.0]]), torch.full((3,), 1 / 3)), "logits"),
        (lambda: SFDA(bn_model(), torch.tensor([0.5, 0.5, 0.1, 0.1], dtype=DT)), "prior"),
        (lambda: SFDA(bn_model(), torch.full((4,), 0.25, dtype=DT), kl_weight=-0.5), "kl_weight"),
        (lambda: SFDA(bn_model(), torch.full((4,), 0.25, dtype=DT), adapt="none"), "adapt"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_a_model_with_another_number_of_classes_than_the_prior_raises_before_any_update():
    method = SFDA(bn_model(classes=4), torch.full((5,), 0.2, dtype=DT), lr=0.5)
    saved = state(method)
    with pytest.raises(ValueError, match="prior"):
        method(batch())
    assert same(state(method), saved)
