"""Offline datasets: shapes, splits, standardization, the MNIST-1D fingerprint and cache."""

import numpy as np
import pytest
import torch

from regkit.data import load_digits, load_mnist1d
from regkit.data.datasets import MNIST1D_FINGERPRINT, _generate_mnist1d, _mnist1d_fingerprint, _mnist1d_mismatch


def test_digits_split_is_stratified_and_standardized():
    d = load_digits()
    assert d.x_train.shape == (1347, 64) and d.x_test.shape == (450, 64)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    train_share = torch.bincount(d.y_train, minlength=10).float() / len(d.y_train)
    test_share = torch.bincount(d.y_test, minlength=10).float() / len(d.y_test)
    assert torch.allclose(train_share, test_share, atol=0.01)
    varying = d.x_train.std(0) > 0
    assert torch.allclose(d.x_train.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(d.x_train.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4)


def test_digits_is_deterministic():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(load_digits(split_seed=1).y_train, a.y_train)


def test_mnist1d_generation_matches_the_pinned_fingerprint():
    arrays = _generate_mnist1d()
    assert _mnist1d_mismatch(arrays) is None
    fingerprint = _mnist1d_fingerprint(arrays)
    assert fingerprint["labels_sha256"] == MNIST1D_FINGERPRINT["labels_sha256"]
    np.testing.assert_allclose(fingerprint["x"], MNIST1D_FINGERPRINT["x"], rtol=1e-9)


def test_mnist1d_fingerprint_ignores_last_bit_noise_but_not_a_changed_value():
    arrays = _generate_mnist1d()
    noisy = dict(arrays, x=arrays["x"] * (1 + 1e-14))  # what another numpy release or CPU can change
    assert _mnist1d_mismatch(noisy) is None
    changed = dict(arrays, x=arrays["x"].copy())
    changed["x"][7, 3] += 1e-3
    assert "signals x" in _mnist1d_mismatch(changed)
    assert "shapes" in _mnist1d_mismatch(dict(arrays, x_test=arrays["x_test"][:10]))


def test_mnist1d_caches_and_verifies(tmp_path):
    d = load_mnist1d(cache=tmp_path)
    assert (tmp_path / "mnist1d.npz").exists()
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40) and d.num_classes == 10
    again = load_mnist1d(cache=tmp_path)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_test, again.y_test)


def test_mnist1d_rejects_a_corrupted_cache(tmp_path):
    load_mnist1d(cache=tmp_path)
    path = tmp_path / "mnist1d.npz"
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["y"][0] = (arrays["y"][0] + 1) % 10
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="fingerprint mismatch.*labels"):
        load_mnist1d(cache=tmp_path)


def test_mnist1d_generation_leaves_global_numpy_state_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    _generate_mnist1d()
    assert np.random.rand() == expected


def test_mnist1d_cache_written_by_processes_at_once_is_whole(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        loaded = list(pool.map(_load_mnist1d_labels, [tmp_path] * 4))
    assert all(torch.equal(labels, loaded[0]) for labels in loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["mnist1d.npz"]  # no temporary file left behind
    load_mnist1d(cache=tmp_path)  # the cached file passes the fingerprint check


def _load_mnist1d_labels(cache):
    return load_mnist1d(cache=cache).y_train
