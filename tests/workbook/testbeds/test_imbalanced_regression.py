"""The imbalanced regression task of balanced_softmax_mse: exact log-normal training law, a test set with the same
number of examples in every bin, reproducible draws, and per-bin MSE against hand-computed values."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from regkit.workbook.testbeds import imbalanced_regression as regression


def test_bin_edges_and_shares_of_the_log_normal_law():
    edges = regression.bin_edges(4, 4.0)
    assert edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    shares = regression.bin_shares(edges)
    expected = [0.5, stats.norm.cdf(math.log(2)) - 0.5, stats.norm.cdf(math.log(3)) - stats.norm.cdf(math.log(2)),
                stats.norm.cdf(math.log(4)) - stats.norm.cdf(math.log(3))]  # fmt: skip
    torch.testing.assert_close(shares, torch.tensor(expected, dtype=torch.float64))
    default = regression.bin_shares(regression.bin_edges())
    assert float(default.sum()) == pytest.approx(stats.norm.cdf(2.5))  # the range is [0, e^2.5]
    assert torch.all(default[1:] < default[:-1])  # decreasing: the imbalance


def test_make_task_train_law_test_bins_and_reproducibility():
    edges = regression.bin_edges()
    task = regression.make_task(20_000, seed=3, edges=edges, test_per_bin=50, pool=60_000)
    assert task.x_train.shape == (20_000, 8) and task.y_train.shape == (20_000,)
    assert task.x_test.shape == (500, 8) and task.x_train.dtype == task.y_test.dtype == torch.float32
    # the training targets follow the log-normal law: log y ~ N(0, 1)
    z = task.y_train.double().log().numpy()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    empirical = np.histogram(task.y_train.numpy(), bins=edges.numpy())[0] / 20_000
    np.testing.assert_allclose(empirical, regression.bin_shares(edges).numpy(), atol=0.01)
    # the test set: 50 targets in each bin, sorted by bin
    assert np.histogram(task.y_test.numpy(), bins=edges.numpy())[0].tolist() == [50] * 10
    assert torch.all(task.y_test[:50] < edges[1]) and torch.all(task.y_test[-50:] >= edges[-2])
    again = regression.make_task(20_000, seed=3, edges=edges, test_per_bin=50, pool=60_000)
    assert torch.equal(task.x_test, again.x_test) and torch.equal(task.y_train, again.y_train)
    other = regression.make_task(20_000, seed=4, edges=edges, test_per_bin=50, pool=60_000)
    assert not torch.equal(task.y_train, other.y_train)


def test_targets_depend_on_the_features_as_specified():
    # tau = 0: y = exp(x·w/‖w‖) exactly, so log y is linear in x with unit-norm coefficients
    task = regression.make_task(200, seed=0, tau=0.0, test_per_bin=1, pool=20_000)
    x, z = task.x_train.double(), task.y_train.double().log()
    w = torch.linalg.lstsq(x, z[:, None]).solution.flatten()
    assert float(w.norm()) == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(x @ w, z, atol=1e-4, rtol=0)


def test_make_task_rejects_a_pool_too_small_and_bad_arguments():
    with pytest.raises(ValueError, match="raise pool"):
        regression.make_task(10, seed=0, test_per_bin=100, pool=1_000)
    with pytest.raises(ValueError, match="tau"):
        regression.make_task(10, seed=0, tau=1.0)
    with pytest.raises(ValueError, match="n_train"):
        regression.make_task(0, seed=0)
    with pytest.raises(ValueError, match="num_bins"):
        regression.bin_edges(0)


def test_per_bin_mse_by_hand():
    edges = torch.tensor([0.0, 1.0, 2.0, 3.0])
    target = torch.tensor([0.5, 0.9, 1.0, 3.0, 7.0])  # 1.0 opens bin 1; 3.0 closes the last bin; 7.0 is outside
    pred = torch.tensor([0.0, 0.9, 2.0, 1.0, 0.0])
    out = regression.per_bin_mse(pred, target, edges)
    torch.testing.assert_close(out, torch.tensor([0.125, 1.0, 4.0], dtype=torch.float64))
    empty = regression.per_bin_mse(torch.zeros(1), torch.tensor([0.5]), edges)
    assert empty[0] == 0.25 and math.isnan(empty[1]) and math.isnan(empty[2])
    with pytest.raises(ValueError, match="same shape"):
        regression.per_bin_mse(torch.zeros(2, 1), torch.zeros(2), edges)
