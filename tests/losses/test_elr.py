"""ELR loss against an independent NumPy computation and the closed-form gradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regkit.losses import ELRLoss, elr_loss


def numpy_elr(logits, labels, targets, lam, clamp=1e-4):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ce = -np.log(p[np.arange(len(labels)), labels])
    pc = np.clip(p, clamp, 1 - clamp)
    return np.mean(ce + lam * np.log(1 - (pc * targets).sum(axis=1)))


def random_batch(n=16, c=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    targets = torch.rand(n, c, generator=g, dtype=dtype)
    return logits, labels, targets / targets.sum(1, keepdim=True)


@pytest.mark.parametrize("lam", [0.0, 0.5, 3.0])
def test_value_matches_numpy(lam):
    logits, labels, targets = random_batch()
    ours = elr_loss(logits, labels, targets, lam=lam)
    ref = numpy_elr(logits.numpy(), labels.numpy(), targets.numpy(), lam)
    assert ours.item() == pytest.approx(ref, rel=1e-12)


def test_lam_zero_is_cross_entropy():
    logits, labels, targets = random_batch()
    assert torch.allclose(elr_loss(logits, labels, targets, lam=0.0), F.cross_entropy(logits, labels))


def test_gradient_matches_closed_form():
    # d/dz_k [CE + λ log(1 - <p, t>)] = p_k - 1[k=y] + λ p_k (<p,t> - t_k) / (1 - <p,t>)   (no clamp active)
    logits, labels, targets = random_batch(n=10, c=5)
    lam = 2.5
    logits.requires_grad_(True)
    elr_loss(logits, labels, targets, lam=lam).backward()
    p = logits.detach().softmax(1)
    s = (p * targets).sum(1, keepdim=True)
    expected = p - F.one_hot(labels, 5) + lam * p * (s - targets) / (1 - s)
    assert torch.allclose(logits.grad, expected / len(labels), atol=1e-12)


def test_gradcheck_float64():
    logits, labels, targets = random_batch(n=6, c=4)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: elr_loss(z, labels, targets, lam=3.0), (logits,))


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_reductions_agree_with_mean(reduction):
    logits, labels, targets = random_batch()
    mean = elr_loss(logits, labels, targets)
    other = elr_loss(logits, labels, targets, reduction=reduction)
    assert torch.allclose(other.sum() if reduction == "none" else other, mean * len(labels))


def test_target_update_is_temporal_ensemble():
    logits, labels, _ = random_batch(n=4, c=3, dtype=torch.float32)
    module = ELRLoss(10, 3, lam=3.0, beta=0.7)
    index = torch.tensor([7, 2, 9, 0])
    module(logits, labels, index)
    p = logits.softmax(1).clamp(1e-4, 1 - 1e-4)
    p = p / p.sum(1, keepdim=True)
    assert torch.allclose(module.targets[index], 0.3 * p)
    assert torch.all(module.targets[[1, 3, 4, 5, 6, 8]] == 0)
    logits2 = torch.randn(4, 3)
    module(logits2, labels, index)
    p2 = logits2.softmax(1).clamp(1e-4, 1 - 1e-4)
    p2 = p2 / p2.sum(1, keepdim=True)
    assert torch.allclose(module.targets[index], 0.7 * 0.3 * p + 0.3 * p2)


def test_loss_uses_the_updated_targets():
    # the authors' order: update t_i with this batch's prediction, then evaluate the loss
    logits, labels, _ = random_batch(n=5, c=4, dtype=torch.float32)
    module = ELRLoss(5, 4, lam=3.0, beta=0.5)
    index = torch.arange(5)
    loss = module(logits, labels, index)
    assert torch.allclose(loss, elr_loss(logits, labels, module.targets[index], lam=3.0))


def test_eval_mode_does_not_update():
    module = ELRLoss(3, 2).eval()
    module(torch.randn(3, 2), torch.tensor([0, 1, 0]), torch.arange(3))
    assert torch.all(module.targets == 0)


def test_gradient_does_not_flow_into_targets():
    logits, labels, _ = random_batch(n=4, c=3, dtype=torch.float32)
    logits.requires_grad_(True)
    module = ELRLoss(4, 3)
    module(logits, labels, torch.arange(4)).backward()
    assert not module.targets.requires_grad and logits.grad is not None


@pytest.mark.parametrize(
    "logits, labels, index, match",
    [
        (torch.randn(4, 3), torch.tensor([0, 1, 2]), torch.arange(4), "labels"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.arange(3), "index"),
        (torch.randn(4, 5), torch.tensor([0, 1, 2, 0]), torch.arange(4), "logits"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 10]), "index"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, -1, 2]), "index"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), torch.arange(4), "labels"),
        (torch.tensor([[0.0, float("nan"), 1.0]] * 4), torch.tensor([0, 1, 2, 0]), torch.arange(4), "logits"),
        (torch.tensor([[0.0, float("inf"), 1.0]] * 4), torch.tensor([0, 1, 2, 0]), torch.arange(4), "logits"),
        (torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 0.0]), torch.arange(4), "labels"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 1, 2]), "index"),
        (torch.randn(4, 3, 1), torch.tensor([0, 1, 2, 0]), torch.arange(4), "logits"),
    ],
)
def test_bad_input_names_the_argument(logits, labels, index, match):
    with pytest.raises(ValueError, match=match):
        ELRLoss(8, 3)(logits, labels, index)


@pytest.mark.parametrize("kwargs, match", [({"beta": 1.0}, "beta"), ({"lam": -1.0}, "lam"), ({"clamp": 1.0}, "clamp")])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ELRLoss(8, 3, **kwargs)


def test_functional_rejects_mismatched_targets():
    logits, labels, targets = random_batch(n=4, c=3)
    with pytest.raises(ValueError, match="targets"):
        elr_loss(logits, labels, targets[:3])
