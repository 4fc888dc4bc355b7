"""The Digits-C testbed (regkit.workbook.testbeds.digits_c): data, corruptions, streams, cached source model."""

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regkit.workbook.testbeds import digits_c as dc
from regkit.workbook.testbeds.classification import load_unit_digits

RANDOM = ("gaussian_noise", "shot_noise", "salt_and_pepper", "shift", "rotation", "elastic")


@pytest.fixture(scope="module")
def digits():
    return dc.load_digits16()


def test_digits16_is_the_upsampled_unit_digits_split(digits):
    x_train, y_train, x_test, y_test = digits
    unit = load_unit_digits()
    assert x_train.shape == (1347, 1, 16, 16) and x_test.shape == (450, 1, 16, 16)
    assert x_train.dtype == torch.float32 and y_test.dtype == torch.int64
    assert torch.equal(y_train, unit.y_train) and torch.equal(y_test, unit.y_test)
    # bilinear ×2 upsampling (half-pixel centres, edge clamped) written as a 16×8 matrix U: image = U X Uᵀ
    u = np.zeros((16, 8))
    for k in range(8):
        u[2 * k, k] += 0.75
        u[2 * k, max(k - 1, 0)] += 0.25
        u[2 * k + 1, k] += 0.75
        u[2 * k + 1, min(k + 1, 7)] += 0.25
    expected = u @ unit.x_test.double().numpy().reshape(-1, 8, 8) @ u.T
    np.testing.assert_allclose(x_test[:, 0].numpy(), expected, atol=1e-6)
    assert float(x_test.min()) >= 0 and float(x_test.max()) <= 1


@pytest.mark.parametrize("name", dc.CORRUPTIONS)
def test_corruption_shape_range_and_determinism(digits, name):
    x = digits[2][:40]
    out = dc.corrupt(x, name, 3, rng=np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(out, dc.corrupt(x, name, 3, rng=np.random.default_rng(1)))
    assert torch.equal(dc.corrupt(x[:, 0], name, 3, rng=np.random.default_rng(1)), out[:, 0])  # (N, 16, 16) too
    other = dc.corrupt(x, name, 3, rng=np.random.default_rng(2))
    assert torch.equal(out, other) == (name not in RANDOM)
    assert not torch.equal(out, x)


@pytest.mark.parametrize("name", dc.CORRUPTIONS)
def test_severity_is_monotonic_in_distance_from_the_clean_image(digits, name):
    x = digits[2][:100]
    distance = [
        float((dc.corrupt(x, name, s, rng=np.random.default_rng(0)) - x).flatten(1).norm(dim=1).mean())
        for s in range(1, 6)
    ]
    assert all(a < b for a, b in zip(distance, distance[1:])), distance


def test_deterministic_corruptions_against_direct_formulas(digits):
    x = digits[2][:20]
    rng = np.random.default_rng(0)
    assert torch.allclose(dc.corrupt(x, "brightness", 2, rng=rng), (x + 0.2).clamp(0, 1))
    mean = x.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(dc.corrupt(x, "contrast", 1, rng=rng), mean + 0.75 * (x - mean), atol=1e-6)
    # pixelate on an 8×8 grid: the 2×2 block means, repeated
    blocks = F.interpolate(F.avg_pool2d(x.double(), 2), scale_factor=2, mode="nearest").float()
    assert torch.allclose(dc.corrupt(x, "pixelate", 3, rng=rng), blocks, atol=1e-6)


def test_noise_corruptions_have_the_stated_statistics():
    grey = torch.full((400, 1, 16, 16), 0.5)
    noisy = dc.corrupt(grey, "gaussian_noise", 2, rng=np.random.default_rng(0))
    assert float((noisy - 0.5).std()) == pytest.approx(0.12, rel=0.02)
    hit = dc.corrupt(grey, "salt_and_pepper", 5, rng=np.random.default_rng(0)) != 0.5
    assert float(hit.float().mean()) == pytest.approx(0.27, abs=0.01)
    dim = torch.full((400, 1, 16, 16), 0.2)  # Poisson(60 · 0.2) / 60: mean 0.2, variance 12 / 3600, never clipped
    shot = dc.corrupt(dim, "shot_noise", 1, rng=np.random.default_rng(0))
    assert float(shot.mean()) == pytest.approx(0.2, abs=0.001)
    assert float(shot.double().var()) == pytest.approx(12 / 3600, rel=0.03)


def test_continual_stream_order_batches_rounds_and_labels():
    # constant images whose grey level encodes the label: brightness keeps the pairing checkable
    y = torch.arange(50) % 10
    x = (y.float() / 20).reshape(-1, 1, 1, 1).expand(-1, 1, 16, 16).contiguous()
    stream = dc.continual_stream(x, y, corruptions=("brightness", "contrast"), severity=1, batch_size=16, rounds=2)
    batches = list(stream)
    assert len(batches) == len(stream) == 2 * 2 * 4
    assert [b.domain for b in batches[:8]] == ["brightness"] * 4 + ["contrast"] * 4
    assert [len(b.y) for b in batches[:4]] == [16, 16, 16, 2] and {b.round for b in batches[8:]} == {1}
    for b in batches:
        clean = b.x[:, 0, 0, 0] - (0.1 if b.domain == "brightness" else 0.0)
        assert torch.allclose(clean, b.y.float() / 20, atol=1e-6)
    first, second = torch.cat([b.y for b in batches[:4]]), torch.cat([b.y for b in batches[8:12]])
    assert not torch.equal(first, second) and torch.equal(first.sort().values, second.sort().values)
    again = list(stream)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(batches, again))


def test_a_single_leftover_image_joins_the_last_batch():
    y = torch.arange(33) % 10
    x = torch.rand(33, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    sizes = [len(b.y) for b in dc.continual_stream(x, y, corruptions=("blur",), batch_size=16)]
    assert sizes == [16, 17]


def test_gradual_stream_goes_one_to_five_to_one(digits):
    stream = dc.gradual_stream(
        digits[2], digits[3], corruptions=("blur", "shift"), batch_size=32, samples_per_domain=32, seed=3
    )
    batches = list(stream)
    assert [(b.domain, b.severity) for b in batches] == [
        (c, s) for c in ("blur", "shift") for s in (1, 2, 3, 4, 5, 4, 3, 2, 1)
    ]


def test_source_model_accuracy_and_cache_checksum(tmp_path, digits):
    model = dc.source_model()
    _, _, x_test, y_test = digits
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    assert accuracy >= 0.95  # the stated floor (0.987 measured)
    assert sum(p.numel() for p in model.parameters()) == 33770
    cached = dc.data_dir() / dc.MODEL_FILE
    shutil.copy(cached, tmp_path / dc.MODEL_FILE)
    shutil.copy(cached.with_suffix(".sha256"), tmp_path / "digits_c_cnn.sha256")
    again = dc.source_model(cache=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    data = bytearray((tmp_path / dc.MODEL_FILE).read_bytes())
    data[-100] ^= 1
    (tmp_path / dc.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        dc.source_model(cache=tmp_path)
    (tmp_path / "digits_c_cnn.sha256").unlink()
    with pytest.raises(ValueError, match="checksum"):
        dc.source_model(cache=tmp_path)


def test_source_training_is_single_threaded_whatever_the_pool(monkeypatch):
    """The weights do not depend on the caller's thread count (the reference run and a 1-thread test train the same
    model), and the caller's thread count is restored."""
    monkeypatch.setitem(dc.RECIPE, "epochs", 1)
    threads = torch.get_num_threads()
    try:
        weights = []
        for pool in (2, 1):
            torch.set_num_threads(pool)
            weights.append(dc._train_source().state_dict())
            assert torch.get_num_threads() == pool
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*(w.values() for w in weights)))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x, y: dc.corrupt(x, "fog", 1, rng=np.random.default_rng()), "name"),
        (lambda x, y: dc.corrupt(x, "blur", 0, rng=np.random.default_rng()), "severity"),
        (lambda x, y: dc.corrupt(x, "blur", 6, rng=np.random.default_rng()), "severity"),
        (lambda x, y: dc.corrupt(x, "blur", True, rng=np.random.default_rng()), "severity"),
        (lambda x, y: dc.corrupt(x, "blur", 1, rng=0), "rng"),
        (lambda x, y: dc.corrupt(x * 2, "blur", 1, rng=np.random.default_rng()), "x"),
        (lambda x, y: dc.corrupt(x[..., :8], "blur", 1, rng=np.random.default_rng()), "x"),
        (lambda x, y: dc.corrupt(x.repeat(1, 3, 1, 1), "blur", 1, rng=np.random.default_rng()), "x"),
        (lambda x, y: dc.continual_stream(x, y, corruptions=("fog",)), "corruptions"),
        (lambda x, y: dc.continual_stream(x, y, batch_size=1), "batch_size"),
        (lambda x, y: dc.continual_stream(x, y, rounds=0), "rounds"),
        (lambda x, y: dc.continual_stream(x, y[:3]), "y"),
        (lambda x, y: dc.gradual_stream(x, y, samples_per_domain=100), "samples_per_domain"),
        (lambda x, y: dc.digits_cnn(1), "num_classes"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    x, y = torch.rand(10, 1, 16, 16), torch.arange(10)
    with pytest.raises(ValueError, match=name):
        call(x, y)


def test_online_errors_count_each_stage_of_each_round_before_the_update():
    y = torch.arange(40) % 10
    x = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    stream = dc.gradual_stream(x, y, corruptions=("blur", "shift"), batch_size=16, rounds=2)

    class Counter(torch.nn.Module):  # predicts class k at its k-th call, then "adapts" (k += 1)
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, images):
            logits = F.one_hot(torch.full((len(images),), self.calls % 10), 10).float()
            self.calls += 1
            return logits

    rows = dc.online_errors(Counter(), stream)
    assert len(rows) == 2 * 18
    expected = [(r, i, c, s) for r in range(2) for i, (c, s) in enumerate(stream.schedule)]
    assert [(row["round"], row["stage"], row["domain"], row["severity"]) for row in rows] == expected
    assert all(row["samples"] == 40 for row in rows)
    wrong, k = [], 0
    for batch in stream:
        wrong.append(int((batch.y != k % 10).sum()))
        k += 1
    per_stage = np.array(wrong).reshape(len(rows), -1).sum(1)  # three batches (16, 16, 8) per stage
    assert [row["errors"] for row in rows] == per_stage.tolist()
    assert all(row["error"] == row["errors"] / 40 for row in rows)
    with torch.no_grad():
        assert rows == dc.online_errors(Counter(), stream, adapt=False)
    with pytest.raises(ValueError, match="stream must be a CorruptionStream"):
        dc.online_errors(Counter(), list(stream))
