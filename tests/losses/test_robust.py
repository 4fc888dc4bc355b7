"""The robust baselines (GCE, SCE, MAE, focal, label smoothing) against NumPy and their limits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regkit.losses import focal_loss, gce_loss, label_smoothing_loss, ldr_kl_loss, mae_loss, sce_loss


def problem(seed=0, b=12, k=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64) * 2, torch.randint(0, k, (b,), generator=g)


def p_y(logits, labels):
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    return p[np.arange(len(labels)), labels.numpy()], p


def test_baselines_against_numpy():
    logits, labels = problem()
    py, p = p_y(logits, labels)
    assert float(gce_loss(logits, labels, q=0.7)) == pytest.approx(np.mean((1 - py**0.7) / 0.7))
    assert float(mae_loss(logits, labels)) == pytest.approx(np.mean(np.abs(np.eye(5)[labels.numpy()] - p).sum(1)))
    rce = -(p * np.log(np.clip(np.eye(5)[labels.numpy()], 1e-4, 1))).sum(1)
    assert float(sce_loss(logits, labels, alpha=0.1, beta=1.0)) == pytest.approx(np.mean(0.1 * -np.log(py) + rce))
    assert float(focal_loss(logits, labels, gamma=2)) == pytest.approx(np.mean(-((1 - py) ** 2) * np.log(py)))
    assert float(label_smoothing_loss(logits, labels, epsilon=0.1)) == pytest.approx(
        float(F.cross_entropy(logits, labels, label_smoothing=0.1))
    )


def test_gce_limits():
    logits, labels = problem(1)
    assert float(gce_loss(logits, labels, q=1e-4)) == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-3)
    assert float(gce_loss(logits, labels, q=1.0)) == pytest.approx(float(mae_loss(logits, labels)) / 2)


@pytest.mark.parametrize("fn", [gce_loss, mae_loss, sce_loss, focal_loss, label_smoothing_loss, ldr_kl_loss])
def test_finite_gradients_and_bad_labels(fn):
    logits, labels = problem(5)
    logits = (logits * 50).requires_grad_()
    fn(logits, labels).backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="labels"):
        fn(logits.detach(), torch.full_like(labels, 7))
