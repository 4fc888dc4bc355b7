"""Bundled and generated classification datasets as standardized tensors.

* ``load_digits``: scikit-learn's 1,797 8×8 handwritten digits (shipped with scikit-learn),
  a stratified train/test split, features standardized with the training statistics.
* ``load_mnist1d``: MNIST-1D (Greydanus, 2020), 5,000 length-40 signals, generated offline
  with ``mnist1d.data.make_dataset`` (never its downloading loader), cached under the data
  directory and checked against a pinned fingerprint (:data:`MNIST1D_FINGERPRINT`) on every load.

The data directory is ``$REGKIT_DATA`` if set, else ``data/`` of the source checkout, else
``~/.cache/regkit``.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from regkit._checks import check_number

__all__ = ["MNIST1D_FINGERPRINT", "Dataset", "data_dir", "load_digits", "load_mnist1d"]

#: The fingerprint of MNIST-1D as ``make_dataset(get_dataset_args())`` (seed 42) generates it: the SHA-256 of
#: the labels (``y`` then ``y_test``, int64 bytes), matched exactly, and three statistics of each signal array
#: (``x``, ``x_test``): its sum, its sum of squares and its projection on fixed standard-normal weights
#: (``numpy.random.default_rng(0)``), matched to a relative 1e-9. The signals are not pinned bit for bit: their
#: last bits differ between numpy releases and machines (make_dataset standardizes with float sums), and a bitwise
#: SHA-256 of them failed on a fresh install whose data agreed to 1e-15.
MNIST1D_FINGERPRINT = {
    "labels_sha256": "6feec4a017698c7fe237c8854cbd2e338c6dd5c16240f6fa79daefaaa129e169",
    "x": (-51.78746787509556, 159248.2538653486, -318.55867504920855),
    "x_test": (51.78746787509186, 40751.74613465136, -58.83397329201096),
}


@dataclass(frozen=True)
class Dataset:
    """A train/test classification split. ``x_*`` are ``(n, d)`` float, ``y_*`` ``(n,)`` int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def num_features(self) -> int:
        """Number of input features ``d`` (columns of ``x_train``, shape ``(n, d)``)."""
        return self.x_train.shape[1]

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset on ``device``."""
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )


def data_dir() -> Path:
    """Where generated datasets are cached (created if missing)."""
    if os.environ.get("REGKIT_DATA"):
        path = Path(os.environ["REGKIT_DATA"])
    else:
        checkout = Path(__file__).resolve().parents[2]
        path = checkout / "data" if (checkout / "pyproject.toml").exists() else Path.home() / ".cache" / "regkit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_dtype(dtype) -> None:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")


def _standardized(name, x_train, y_train, x_test, y_test, num_classes, dtype) -> Dataset:
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std < 1e-8] = 1.0  # constant pixels (digits' borders) stay at zero
    as_x = lambda a: torch.as_tensor((a - mean) / std, dtype=dtype)
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)
    return Dataset(name, as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test), num_classes)


def load_digits(*, test_size: float = 0.25, split_seed: int = 0, dtype: torch.dtype = torch.float32) -> Dataset:
    """scikit-learn's digits: 64 standardized features, 10 classes, stratified split.

    With the defaults: 1,347 training and 450 test examples.
    """
    test_size = check_number("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    split_seed = check_number("split_seed", split_seed, low=0, integer=True)
    _check_dtype(dtype)
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    x, y = sklearn_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float64), y, test_size=test_size, random_state=split_seed, stratify=y
    )
    return _standardized("digits", x_train, y_train, x_test, y_test, 10, dtype)


def _mnist1d_fingerprint(arrays: dict[str, np.ndarray]) -> dict:
    """The fingerprint of ``arrays`` in the form of :data:`MNIST1D_FINGERPRINT`."""
    digest = hashlib.sha256()
    for key in ("y", "y_test"):
        digest.update(np.ascontiguousarray(arrays[key], dtype=np.int64).tobytes())
    fingerprint = {"labels_sha256": digest.hexdigest()}
    for key in ("x", "x_test"):
        x = np.asarray(arrays[key], dtype=np.float64)
        weights = np.random.default_rng(0).standard_normal(x.shape)
        fingerprint[key] = (float(x.sum()), float((x * x).sum()), float((x * weights).sum()))
    return fingerprint


def _mnist1d_mismatch(arrays: dict[str, np.ndarray]) -> str | None:
    """What of ``arrays`` differs from :data:`MNIST1D_FINGERPRINT` (``None`` when nothing does)."""
    if {key: np.shape(arrays.get(key)) for key in ("x", "y", "x_test", "y_test")} != {
        "x": (4000, 40),
        "y": (4000,),
        "x_test": (1000, 40),
        "y_test": (1000,),
    }:
        return "the array shapes"
    fingerprint = _mnist1d_fingerprint(arrays)
    if fingerprint["labels_sha256"] != MNIST1D_FINGERPRINT["labels_sha256"]:
        return f"the labels (sha256 {fingerprint['labels_sha256']})"
    for key in ("x", "x_test"):
        if not np.allclose(fingerprint[key], MNIST1D_FINGERPRINT[key], rtol=1e-9, atol=1e-6):
            return f"the signals {key} (sum, sum of squares, projection {fingerprint[key]})"
    return None


def _generate_mnist1d() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds the global `random` and numpy generators; leave the caller's state alone
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": raw["x"].astype(np.float64),
        "y": raw["y"].astype(np.int64),
        "x_test": raw["x_test"].astype(np.float64),
        "y_test": raw["y_test"].astype(np.int64),
    }


def load_mnist1d(*, dtype: torch.dtype = torch.float32, cache: Path | None = None) -> Dataset:
    """MNIST-1D with the package's default arguments: 4,000 train / 1,000 test, 40 features.

    Generated on first use (about a second) and cached as ``mnist1d.npz``; data that differ from
    :data:`MNIST1D_FINGERPRINT` (a corrupted cache, another version of the mnist1d package) raise
    ``ValueError`` naming what differs.
    """
    _check_dtype(dtype)
    path = (cache or data_dir()) / "mnist1d.npz"
    if path.exists():
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        origin = f"the cached file {path}"
    else:
        arrays = _generate_mnist1d()
        origin = "freshly generated MNIST-1D (is the installed mnist1d package a different version?)"
    mismatch = _mnist1d_mismatch(arrays)
    if mismatch is not None:
        raise ValueError(
            f"fingerprint mismatch for {origin}: {mismatch} differ from regkit.data.datasets.MNIST1D_FINGERPRINT; "
            f"delete {path} to regenerate it"
        )
    if not path.exists():  # a file of this process's own, renamed into place: processes generating at once never
        # see one another's half-written file (two notebook runs of a Dask stability sweep do)
        handle, tmp = tempfile.mkstemp(suffix=".npz", prefix="mnist1d.", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(tmp, path)
    return _standardized("mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], 10, dtype)
