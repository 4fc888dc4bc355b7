"""Digits-C: the shared testbed of the test-time adaptation notebooks (``eata_tta``, ``cotta``,
``rmt_robust_mean_teacher``, ``woc_open_set_tta``, ``sfda_entropy_prior``).

* data (:func:`load_digits16`): scikit-learn's digits, grey levels / 16 in ``[0, 1]``, bilinearly upsampled from
  8×8 to 16×16, in ``regkit.data.load_digits``' split (75/25, stratified, ``split_seed=0``): 1,347 training and 450
  test images ``(N, 1, 16, 16)`` float32;
* source model (:func:`source_model`): a small BatchNorm CNN (:func:`digits_cnn`, three 3×3 conv–BN–ReLU blocks of
  16/32/64 channels, two 2×2 max-pools, a linear head; 33,770 parameters) trained once on the clean training split
  (:data:`RECIPE`: Adam, lr 1e-3, 30 epochs, batch 64, seed 0, single-threaded) and cached as
  ``digits_c_cnn.pt`` in ``regkit.data.data_dir()`` next to the SHA-256 of the file, ``digits_c_cnn.sha256``,
  written with it and checked on every load (a changed file raises ``ValueError``; delete both to retrain);
* corruptions (:func:`corrupt`, :data:`CORRUPTIONS`): ten numpy/scipy corruptions after ImageNet-C (Hendrycks &
  Dietterich, 2019), scaled to 16×16 digits, at severities 1–5 (:data:`SEVERITY_PARAMETERS`), each drawing its
  randomness from an explicit ``numpy.random.Generator``; outputs stay in ``[0, 1]``;
* streams (:class:`CorruptionStream`): batches of corrupted test images, domain after domain, for ``rounds``
  rounds; :func:`continual_stream` (every corruption at one severity, in a given order, as in CoTTA's continual
  CIFAR10-C protocol) and :func:`gradual_stream` (each corruption's severity going 1→5→1, as in RMT's gradual
  protocol). Each domain's corrupted images are drawn once per stream seed and re-shuffled every round;
* online evaluation (:func:`online_errors`): a test-time adaptation method run over a stream, batch after batch,
  scored on the prediction it returns before its update on that batch, summed per stage of every round.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from scipy import ndimage
from torch import nn

from regkit.data.datasets import data_dir

__all__ = [
    "CORRUPTIONS",
    "RECIPE",
    "SEVERITY_PARAMETERS",
    "CorruptionStream",
    "StreamBatch",
    "continual_stream",
    "corrupt",
    "digits_cnn",
    "gradual_stream",
    "load_digits16",
    "online_errors",
    "source_model",
]

#: The parameter of each corruption at severities 1–5 (see :func:`corrupt` for its meaning).
SEVERITY_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # noise standard deviation
    "shot_noise": (60.0, 25.0, 12.0, 5.0, 3.0),  # Poisson photon count at grey level 1
    "salt_and_pepper": (0.03, 0.06, 0.10, 0.17, 0.27),  # fraction of pixels set to 0 or 1
    "blur": (0.5, 0.75, 1.0, 1.25, 1.5),  # Gaussian blur standard deviation (pixels)
    "contrast": (0.75, 0.6, 0.45, 0.3, 0.2),  # factor on the deviation from the image mean
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added grey level
    "shift": (1.0, 1.5, 2.0, 2.5, 3.0),  # translation length (pixels), random direction
    "rotation": (8.0, 16.0, 24.0, 32.0, 40.0),  # rotation angle (degrees), random sign
    "elastic": (1.0, 1.75, 2.5, 3.25, 4.0),  # elastic displacement scale (pixels)
    "pixelate": (12.0, 10.0, 8.0, 6.0, 5.0),  # side of the block grid the image is averaged on
}
#: The corruption names, in the default stream order.
CORRUPTIONS: tuple[str, ...] = tuple(SEVERITY_PARAMETERS)

#: How the cached source model is trained; stored in the cache file, and a file of another recipe is rejected.
RECIPE = {"version": 2, "epochs": 30, "batch_size": 64, "lr": 1e-3, "seed": 0}
MODEL_FILE = "digits_c_cnn.pt"


def load_digits16() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: digits in ``[0, 1]``, ``(N, 1, 16, 16)`` float32, labels int64.

    The split of ``regkit.data.load_digits()`` (75/25, stratified, ``split_seed=0``); bilinear upsampling
    (``align_corners=False``), so the grey levels stay in ``[0, 1]``.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    x, y = sklearn_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)

    def images(a):
        small = torch.as_tensor(a, dtype=torch.float32).reshape(-1, 1, 8, 8)
        return F.interpolate(small, size=(16, 16), mode="bilinear", align_corners=False).clamp(0.0, 1.0)

    labels = lambda a: torch.as_tensor(a, dtype=torch.int64)
    return images(x_train), labels(y_train), images(x_test), labels(y_test)


# ------------------------------------------------------------------------------------------------------------
# corruptions: each maps images (N, 16, 16) float64 in [0, 1] to the same, with its parameter p and a generator
# ------------------------------------------------------------------------------------------------------------
def _gaussian_noise(x, p, rng):
    return x + p * rng.standard_normal(x.shape)


def _shot_noise(x, p, rng):
    return rng.poisson(x * p) / p


def _salt_and_pepper(x, p, rng):
    hit = rng.random(x.shape) < p
    return np.where(hit, (rng.random(x.shape) < 0.5).astype(x.dtype), x)


def _blur(x, p, rng):
    return ndimage.gaussian_filter(x, sigma=(0, p, p), mode="constant")


def _contrast(x, p, rng):
    mean = x.mean(axis=(1, 2), keepdims=True)
    return mean + p * (x - mean)


def _brightness(x, p, rng):
    return x + p


def _shift(x, p, rng):
    angles = rng.uniform(0, 2 * np.pi, size=len(x))
    return np.stack(
        [ndimage.shift(im, (p * np.sin(a), p * np.cos(a)), order=1, mode="constant") for im, a in zip(x, angles)]
    )


def _rotation(x, p, rng):
    signs = rng.choice((-1.0, 1.0), size=len(x))
    return np.stack([ndimage.rotate(im, s * p, reshape=False, order=1, mode="constant") for im, s in zip(x, signs)])


def _elastic(x, p, rng):
    grid = np.mgrid[0:16, 0:16].astype(np.float64)
    out = np.empty_like(x)
    for i, im in enumerate(x):
        field = ndimage.gaussian_filter(rng.standard_normal((2, 16, 16)), sigma=(0, 2.0, 2.0))
        field *= p / max(np.abs(field).max(), 1e-12)  # largest displacement: p pixels
        out[i] = ndimage.map_coordinates(im, grid + field, order=1, mode="constant")
    return out


def _pixelate(x, p, rng):
    k = int(p)
    block = (np.arange(16) * k) // 16  # pixel → block index on a k × k grid
    sums = np.zeros((len(x), k, k))
    np.add.at(sums, (slice(None), block[:, None], block[None, :]), x)
    counts = np.zeros((k, k))
    np.add.at(counts, (block[:, None], block[None, :]), 1.0)
    return (sums / counts)[:, block[:, None], block[None, :]]


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "salt_and_pepper": _salt_and_pepper,
    "blur": _blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "shift": _shift,
    "rotation": _rotation,
    "elastic": _elastic,
    "pixelate": _pixelate,
}


def corrupt(x: torch.Tensor, name: str, severity: int, *, rng: np.random.Generator) -> torch.Tensor:
    """The images ``x`` (``(N, 1, 16, 16)`` or ``(N, 16, 16)``, in ``[0, 1]``) under corruption ``name`` at
    ``severity`` in 1–5, clipped to ``[0, 1]``; same shape, dtype and device.

    The corruptions (parameter ``p`` from :data:`SEVERITY_PARAMETERS`): ``gaussian_noise`` ``x + p·N(0, 1)``;
    ``shot_noise`` ``Poisson(p·x)/p``; ``salt_and_pepper`` a fraction ``p`` of pixels set to 0 or 1;
    ``blur`` a Gaussian filter of standard deviation ``p``; ``contrast`` ``m + p·(x − m)``, ``m`` the image mean;
    ``brightness`` ``x + p``; ``shift`` a translation by ``p`` pixels in a uniform random direction;
    ``rotation`` by ``±p`` degrees; ``elastic`` a smooth random displacement field (Gaussian-filtered noise,
    σ = 2 pixels) of largest length ``p``; ``pixelate`` block averages on a ``p × p`` grid. Geometric ones use
    bilinear interpolation and a black (0) border. Randomness comes from ``rng`` only.
    Raises ``ValueError`` naming ``x``, ``name``, ``severity`` or ``rng``.
    """
    if name not in _FUNCTIONS:
        raise ValueError(f"name must be one of {', '.join(CORRUPTIONS)}, got {name!r}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or tuple(x.shape[-2:]) != (16, 16):
        raise ValueError("x must be a floating tensor of images (N, 1, 16, 16) or (N, 16, 16)")
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[1] != 1):
        raise ValueError(f"x must be (N, 1, 16, 16) or (N, 16, 16), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()) or float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError("x must have finite grey levels in [0, 1]")
    images = x.detach().cpu().numpy().astype(np.float64).reshape(-1, 16, 16)
    out = _FUNCTIONS[name](images, SEVERITY_PARAMETERS[name][severity - 1], rng)
    return torch.as_tensor(np.clip(out, 0.0, 1.0), dtype=x.dtype, device=x.device).reshape(x.shape)


# ------------------------------------------------------------------------------------------------------------
# streams
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamBatch:
    """One test batch: images ``x`` ``(B, 1, 16, 16)``, labels ``y`` ``(B,)``, its domain (corruption name),
    severity and round (from 0)."""

    x: torch.Tensor
    y: torch.Tensor
    domain: str
    severity: int
    round: int


class CorruptionStream:
    """A re-iterable stream of corrupted test batches: ``rounds`` passes over ``schedule``.

    ``schedule``: ``(corruption, severity)`` stages in order; each stage's images (``samples_per_domain`` of
    ``x``, all by default, the same subset for every stage) are corrupted once, with a generator seeded by
    ``(seed, stage index)``, and shuffled anew every round (``torch.Generator`` seeded by ``seed``), then cut into
    batches of ``batch_size`` (the last one of a stage may be smaller, never below 2 images). Iterating twice gives
    the same batches. ``x``: ``(N, 1, 16, 16)`` in ``[0, 1]``; ``y``: ``(N,)`` int64.
    Raises ``ValueError`` naming the argument.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        schedule: Sequence[tuple[str, int]],
        *,
        batch_size: int = 64,
        rounds: int = 1,
        seed: int = 0,
        samples_per_domain: int | None = None,
    ):
        for name, value, low in (("batch_size", batch_size, 2), ("rounds", rounds, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x):
            raise ValueError("y must be a (N,) label tensor with one label per image of x")
        if not schedule:
            raise ValueError("schedule must hold at least one (corruption, severity) stage")
        n = len(x) if samples_per_domain is None else samples_per_domain
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= len(x):
            raise ValueError(f"samples_per_domain must be an integer in [2, {len(x)}], got {samples_per_domain!r}")
        subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        self.x, self.y = x[subset], y[subset]
        self.schedule = [(str(name), int(severity)) for name, severity in schedule]
        self.stages = [
            corrupt(self.x, name, severity, rng=np.random.default_rng([seed, index]))
            for index, (name, severity) in enumerate(self.schedule)
        ]
        self.batch_size, self.rounds, self.seed = batch_size, rounds, seed

    def _cuts(self) -> list[tuple[int, int]]:
        n, b = len(self.x), self.batch_size
        cuts = [(i, min(i + b, n)) for i in range(0, n, b)]
        if len(cuts) > 1 and cuts[-1][1] - cuts[-1][0] < 2:  # merge a single leftover image into the last batch
            cuts[-2:] = [(cuts[-2][0], n)]
        return cuts

    def __len__(self) -> int:
        return self.rounds * len(self.schedule) * len(self._cuts())

    def __iter__(self) -> Iterator[StreamBatch]:
        generator = torch.Generator().manual_seed(self.seed)
        for r in range(self.rounds):
            for (name, severity), images in zip(self.schedule, self.stages):
                order = torch.randperm(len(images), generator=generator)
                for start, stop in self._cuts():
                    index = order[start:stop]
                    yield StreamBatch(images[index], self.y[index], name, severity, r)


def _order(corruptions) -> list[str]:
    corruptions = list(corruptions)
    bad = [c for c in corruptions if c not in _FUNCTIONS]
    if not corruptions or bad:
        raise ValueError(f"corruptions must be a non-empty sequence of {', '.join(CORRUPTIONS)}; unknown: {bad}")
    return corruptions


def continual_stream(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severity: int = 5,
    batch_size: int = 64,
    rounds: int = 1,
    seed: int = 0,
    samples_per_domain: int | None = None,
) -> CorruptionStream:
    """The continual stream: every corruption of ``corruptions`` (in that order) at ``severity``, ``rounds``
    times (CoTTA's continual protocol). Arguments as :class:`CorruptionStream`."""
    schedule = [(name, severity) for name in _order(corruptions)]
    return CorruptionStream(
        x, y, schedule, batch_size=batch_size, rounds=rounds, seed=seed, samples_per_domain=samples_per_domain
    )


def gradual_stream(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    batch_size: int = 64,
    rounds: int = 1,
    seed: int = 0,
    samples_per_domain: int | None = None,
) -> CorruptionStream:
    """The gradual stream: each corruption's severity goes 1, 2, 3, 4, 5, 4, 3, 2, 1 before the next corruption
    (RMT's gradual protocol), ``rounds`` times. Arguments as :class:`CorruptionStream`."""
    levels = (1, 2, 3, 4, 5, 4, 3, 2, 1)
    schedule = [(name, s) for name in _order(corruptions) for s in levels]
    return CorruptionStream(
        x, y, schedule, batch_size=batch_size, rounds=rounds, seed=seed, samples_per_domain=samples_per_domain
    )


def online_errors(method, stream: CorruptionStream, *, adapt: bool = True) -> list[dict]:
    """Run ``method`` (``x → logits``, e.g. a :class:`regkit.tta.TTAMethod`) over ``stream`` batch after batch
    and score each batch on the prediction ``method(x)`` returns (online: before any update on that batch).

    Returns one row per stage of every round, in stream order: ``round`` (from 0), ``stage`` (index into
    ``stream.schedule``), ``domain``, ``severity``, ``errors`` and ``samples`` (counts) and ``error`` (their
    ratio). ``adapt=False`` calls ``method`` under ``torch.no_grad()`` (for stateless methods: source-only,
    BN-adapt); otherwise under ``torch.enable_grad()``. Raises ``ValueError`` if ``stream`` is not a
    :class:`CorruptionStream`.
    """
    if not isinstance(stream, CorruptionStream):
        raise ValueError(f"stream must be a CorruptionStream, got {type(stream).__name__}")
    per_stage = len(stream._cuts())
    rows: list[dict] = []
    for i, batch in enumerate(stream):
        with torch.enable_grad() if adapt else torch.no_grad():
            errors = int((method(batch.x).argmax(1) != batch.y).sum())
        if i % per_stage == 0:  # a stage's first batch: the batches come stage after stage, per_stage each
            stage = (i // per_stage) % len(stream.schedule)
            row = {"round": batch.round, "stage": stage, "domain": batch.domain, "severity": batch.severity}
            rows.append(row | {"errors": 0, "samples": 0})
        rows[-1]["errors"] += errors
        rows[-1]["samples"] += len(batch.y)
    for row in rows:
        row["error"] = row["errors"] / row["samples"]
    return rows


# ------------------------------------------------------------------------------------------------------------
# the source model
# ------------------------------------------------------------------------------------------------------------
def digits_cnn(num_classes: int = 10) -> nn.Sequential:
    """The BatchNorm CNN of the testbed, ``(N, 1, 16, 16) → (N, num_classes)`` logits: conv3×3(16)–BN–ReLU–
    maxpool2, conv3×3(32)–BN–ReLU–maxpool2, conv3×3(64)–BN–ReLU, flatten, linear (33,770 parameters for 10
    classes)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16),
        nn.MaxPool2d(2),
        *block(16, 32),
        nn.MaxPool2d(2),
        *block(32, 64),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, num_classes),
    )


def _train_source() -> nn.Sequential:
    x, y, _, _ = load_digits16()
    # one thread: the convolutions' reductions are ordered differently with more threads, and the weights then
    # differ by up to 0.06 (2 threads vs 1 on this CPU): every process, whatever its pool, trains the same model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_source_single_threaded(x, y)
    finally:
        torch.set_num_threads(threads)


def _train_source_single_threaded(x: torch.Tensor, y: torch.Tensor) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        model = digits_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
        generator = torch.Generator().manual_seed(RECIPE["seed"])
        model.train()
        for _ in range(RECIPE["epochs"]):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), RECIPE["batch_size"]):
                index = order[start : start + RECIPE["batch_size"]]
                if len(index) < 2:
                    continue
                loss = F.cross_entropy(model(x[index]), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_model(*, cache: Path | None = None, device: torch.device | str | None = None) -> nn.Sequential:
    """The source model: :func:`digits_cnn` trained on the clean training split (:data:`RECIPE`), in eval mode.

    Trained on first use (about 20 s on one CPU core) and cached as ``digits_c_cnn.pt`` with its SHA-256 in
    ``digits_c_cnn.sha256`` in ``cache`` (default ``regkit.data.data_dir()``). On load, a file whose SHA-256 differs
    from the stored one, a missing checksum or another recipe raises ``ValueError`` saying to delete the files.
    """
    folder = Path(cache) if cache is not None else data_dir()
    path, checksum = folder / MODEL_FILE, folder / (Path(MODEL_FILE).stem + ".sha256")
    folder.mkdir(parents=True, exist_ok=True)
    # one process trains and writes the pair (model, checksum); processes starting at once (pytest-xdist, parallel
    # notebooks) wait for it, and a reader never sees a model without its checksum
    with FileLock(folder / (Path(MODEL_FILE).stem + ".lock")):
        if not path.exists():
            model = _train_source()
            handle, tmp = tempfile.mkstemp(suffix=".pt", prefix="digits_c_cnn.", dir=folder)
            with os.fdopen(handle, "wb") as file:
                torch.save({"recipe": dict(RECIPE), "state_dict": model.state_dict()}, file)
            os.chmod(tmp, 0o644)  # mkstemp creates it owner-only
            checksum.write_text(_sha256(Path(tmp)) + "\n")
            os.replace(tmp, path)
    if not checksum.exists() or checksum.read_text().strip() != _sha256(path):
        raise ValueError(
            f"checksum mismatch for the cached source model {path}: its SHA-256 differs from {checksum} (or that "
            f"is missing); delete both files to retrain"
        )
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if stored.get("recipe") != RECIPE:
        raise ValueError(f"the cached source model {path} was trained with another recipe; delete it and {checksum}")
    model = digits_cnn()
    model.load_state_dict(stored["state_dict"])
    return model.to(device).eval() if device is not None else model.eval()
