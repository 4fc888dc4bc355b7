"""The classification testbed's helpers: occlusion, the augmented batch loss and the noisy-label
metrics and summary, against hand-computed values."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regkit.data import Dataset
from regkit.workbook.testbeds import classification as testbed


def test_occluded_zeroes_one_half_side_box_per_example_and_is_reproducible():
    x = torch.arange(1, 3 * 64 + 1, dtype=torch.float32).reshape(3, 64)  # no zeros to begin with
    out = testbed.occluded(x, (1, 8, 8))
    assert out.shape == x.shape and torch.equal(out, testbed.occluded(x, (1, 8, 8)))
    assert not torch.equal(out, testbed.occluded(x, (1, 8, 8), seed=1))
    for row, original in zip(out, x):
        image = row.reshape(8, 8)
        rows, cols = torch.nonzero(image == 0, as_tuple=True)
        assert 0 < len(rows) <= 16  # a box of side 4 (half of 8), clipped at the border
        box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert (box == 0).all() and len(rows) == box.numel()  # the zeros form one rectangle
        kept = row != 0
        assert torch.equal(row[kept], original[kept])


def test_augmented_loss_is_ce_on_clean_batches_and_soft_ce_on_mixed_ones():
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, y = torch.randn(4, 6), torch.tensor([0, 2, 1, 2])
    clean = testbed.augmented_loss(lambda view, labels: None, (2, 3))
    with torch.no_grad():
        assert clean(model, x, y, None, 1).item() == pytest.approx(F.cross_entropy(model(x), y).item())
    targets = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0], [0.3, 0.3, 0.4]])
    seen = []

    def mix(view, labels):
        seen.append(view.shape)
        return view.flip(0), targets, 0.5

    with torch.no_grad():
        loss = testbed.augmented_loss(mix, (2, 3))(model, x, y, None, 1)
        expected = -(targets * model(x.flip(0)).log_softmax(1)).sum(1).mean()
    assert seen == [torch.Size([4, 2, 3])] and loss.item() == pytest.approx(expected.item())


class _Fixed(nn.Module):
    """Predicts the class stored for each input (its first feature)."""

    def forward(self, x):
        return F.one_hot(x[:, 0].long(), 3).float()


def test_noisy_label_metrics_count_predictions_on_the_corrupted_examples():
    # Predictions on the train set: 0, 1, 2, 2, 1; clean labels 0, 1, 1, 2, 0; noisy labels 0, 2, 0, 1, 1.
    x_train = torch.tensor([[0.0], [1.0], [2.0], [2.0], [1.0]])
    data = Dataset("t", x_train, torch.tensor([0, 1, 1, 2, 0]), torch.tensor([[0.0], [1.0]]), torch.tensor([0, 2]), 3)
    metrics = testbed.noisy_label_metrics(_Fixed(), data, torch.tensor([0, 2, 0, 1, 1]))
    # corrupted: examples 1..4 → predicted 1 (true), 2 (other), 2 (true), 1 (noisy)
    assert metrics == pytest.approx({"test_accuracy": 0.5, "true": 0.5, "noisy": 0.25, "other": 0.25})


def test_noisy_label_summary_takes_the_first_peak_and_the_last_epoch():
    history = pd.DataFrame(
        {
            "arm": ["A"] * 4 + ["B"] * 3,
            "seed": [0] * 7,
            "epoch": [1, 2, 3, 4, 1, 2, 3],
            "test_accuracy": [0.5, 0.8, 0.8, 0.6, 0.1, 0.2, 0.3],
            "true": [0.4, 0.9, 0.7, 0.2, 0.1, 0.3, 0.2],
            "noisy": [0.1, 0.05, 0.3, 0.7, 0.5, 0.4, 0.3],
        }
    )
    summary = testbed.noisy_label_summary(history.iloc[::-1], ["arm", "seed"])  # row order does not matter
    assert list(summary.index) == [("A", 0), ("B", 0)]
    a, b = summary.loc[("A", 0)], summary.loc[("B", 0)]
    assert (a.peak_accuracy, a.peak_epoch, a.final_accuracy, a.final_memorized, a.final_true, a.best_true) == (
        0.8,
        2,
        0.6,
        0.7,
        0.2,
        0.9,
    )
    assert (b.peak_accuracy, b.peak_epoch, b.final_accuracy, b.final_memorized, b.final_true, b.best_true) == (
        0.3,
        3,
        0.3,
        0.3,
        0.2,
        0.3,
    )


def test_long_tailed_counts_follow_the_exponential_profile():
    assert testbed.long_tailed_counts(100, 3, 100) == [100, 10, 1]
    assert testbed.long_tailed_counts(133, 10, 100) == [133, 79, 47, 28, 17, 10, 6, 3, 2, 1]
    assert testbed.long_tailed_counts(7, 4, 1) == [7, 7, 7, 7]  # IR = 1: balanced
    assert testbed.long_tailed_counts(5, 3, 1000) == [5, 1, 1]  # at least one example per class
    for bad in ({"n_max": 0}, {"num_classes": 1}, {"imbalance_ratio": 0.5}):
        with pytest.raises(ValueError):
            testbed.long_tailed_counts(**{"n_max": 10, "num_classes": 3, "imbalance_ratio": 10} | bad)


def _balanced_data(per_class=20, num_classes=4):
    y = torch.arange(num_classes).repeat_interleave(per_class)
    x = torch.arange(len(y), dtype=torch.float32)[:, None]  # feature = position: tracks the examples kept
    return Dataset("t", x, y, x[:8], y[:8], num_classes)


def test_long_tailed_subsamples_the_training_split_per_seed():
    data = _balanced_data()
    lt = testbed.long_tailed(data, 20, seed=0)
    assert torch.bincount(lt.y_train, minlength=4).tolist() == testbed.long_tailed_counts(20, 4, 20)
    assert torch.equal(data.y_train[lt.x_train[:, 0].long()], lt.y_train)  # every kept example keeps its label
    assert torch.all(lt.x_train[1:, 0] > lt.x_train[:-1, 0])  # original order, no repeats
    assert lt.x_test is data.x_test and lt.y_test is data.y_test and lt.num_classes == 4
    again, other = testbed.long_tailed(data, 20, seed=0), testbed.long_tailed(data, 20, seed=1)
    assert torch.equal(again.x_train, lt.x_train) and not torch.equal(other.x_train, lt.x_train)


def test_long_tailed_takes_n_max_from_the_smallest_class():
    data = _balanced_data()
    keep = data.y_train != 2
    keep[torch.nonzero(data.y_train == 2).flatten()[:10]] = True  # class 2: 10 examples, the others 20
    small = Dataset("t", data.x_train[keep], data.y_train[keep], data.x_test, data.y_test, 4)
    lt = testbed.long_tailed(small, 10, seed=0)
    assert torch.bincount(lt.y_train, minlength=4).tolist() == testbed.long_tailed_counts(10, 4, 10)


def test_long_tailed_metrics_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 0, 0, 1, 2, 0])  # recalls 1, 0.5, 0.5
    metrics = testbed.long_tailed_metrics(F.one_hot(pred, 3).float(), labels, [1, 2])
    # F1: class 0: precision 2/4, recall 1 → 2/3; class 1: 1, 0.5 → 2/3; class 2: 1, 0.5 → 2/3
    assert metrics == pytest.approx(
        {"accuracy": 4 / 6, "balanced_accuracy": 2 / 3, "macro_f1": 2 / 3, "tail_accuracy": 0.5}
    )
    with pytest.raises(ValueError, match="tail_classes"):
        testbed.long_tailed_metrics(F.one_hot(pred, 4).float(), labels, [3])


def test_unit_digits_are_the_standardized_digits_in_grey_levels_over_16():
    unit, (standard, _) = testbed.load_unit_digits(), testbed.load("digits")
    for split in ("train", "test"):
        x, x_std = getattr(unit, f"x_{split}"), getattr(standard, f"x_{split}")
        assert torch.equal(getattr(unit, f"y_{split}"), getattr(standard, f"y_{split}"))
        assert x.dtype == torch.float32 and x.shape == x_std.shape
        assert x.min() == 0 and x.max() == 1 and torch.equal(x * 16, (x * 16).round())  # 17 grey levels
    mean, std = unit.x_train.double().mean(0), unit.x_train.double().std(0, correction=0)
    std[std < 1e-8 / 16] = 1 / 16  # constant pixels: load("digits") divides by 1 grey level
    for split in ("train", "test"):  # the same examples: standardizing gives load("digits")
        x = (getattr(unit, f"x_{split}").double() - mean) / std
        torch.testing.assert_close(x.float(), getattr(standard, f"x_{split}"), rtol=1e-5, atol=1e-5)


def test_shifted_noisy_digits_without_perturbation_is_the_testbed_digits():
    clean = testbed.load("digits")[0]
    same = testbed.shifted_noisy_digits(sigma=0.0, max_shift=0, seed=5)
    for a, b in ((same.x_train, clean.x_train), (same.x_test, clean.x_test)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch.equal(same.y_train, clean.y_train) and torch.equal(same.y_test, clean.y_test)


def test_each_image_is_one_of_its_nine_one_pixel_shifts_with_a_zero_border():
    from regkit.workbook.testbeds.classification import _shift_and_add_noise

    x = torch.arange(1, 20 * 64 + 1, dtype=torch.float64).reshape(20, 64)  # no zeros to begin with
    out = _shift_and_add_noise(x, 0.0, 1, torch.Generator().manual_seed(0))
    shifts = []
    for shifted, source in zip(out.reshape(20, 8, 8), x.reshape(20, 8, 8)):
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                expected = torch.zeros(8, 8, dtype=x.dtype)
                expected[max(dy, 0) : 8 + min(dy, 0), max(dx, 0) : 8 + min(dx, 0)] = source[
                    max(-dy, 0) : 8 - max(dy, 0), max(-dx, 0) : 8 - max(dx, 0)
                ]
                matches.append(torch.equal(shifted, expected))
        assert sum(matches) == 1
        shifts.append(matches.index(True))
    assert len(set(shifts)) > 3  # the offsets vary between images
    noisy = _shift_and_add_noise(x, 2.0, 1, torch.Generator().manual_seed(0))  # the same offsets, plus noise
    noise = noisy - out
    assert float(noise.std()) == pytest.approx(2.0, rel=0.05) and abs(float(noise.mean())) < 0.1


def test_shifted_noisy_digits_is_standardized_and_deterministic_per_seed():
    a, b, c = (testbed.shifted_noisy_digits(sigma=2.0, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_train, c.x_train) and not torch.equal(a.x_test, c.x_test)
    torch.testing.assert_close(a.x_train.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(a.x_train.std(0, correction=0), torch.ones(64), atol=1e-4, rtol=0)
    assert torch.equal(a.y_test, testbed.load("digits")[0].y_test)
    with pytest.raises(ValueError, match="sigma"):
        testbed.shifted_noisy_digits(sigma=-1.0, seed=0)
    with pytest.raises(ValueError, match="max_shift"):
        testbed.shifted_noisy_digits(sigma=0.0, max_shift=8, seed=0)


def test_validation_split_holds_out_a_stratified_fraction_of_the_training_set():
    data = testbed.load("digits")[0]
    split = testbed.validation_split(data, 0.2, seed=0)
    assert len(split.y_test) == 270 and len(split.y_train) == 1347 - 270  # ⌈0.2 · 1347⌉ held out
    rows = {tuple(r.tolist()) for r in data.x_train}
    fit, held = ({tuple(r.tolist()) for r in x} for x in (split.x_train, split.x_test))
    assert fit | held == rows and not fit & held  # a partition of the training set
    shares = torch.bincount(split.y_test, minlength=10) / len(split.y_test)
    assert torch.allclose(shares, torch.bincount(data.y_train, minlength=10) / len(data.y_train), atol=0.01)
    again = testbed.validation_split(data, 0.2, seed=0)
    assert torch.equal(again.x_test, split.x_test)
    assert not torch.equal(testbed.validation_split(data, 0.2, seed=1).x_test, split.x_test)
    with pytest.raises(ValueError, match="fraction"):
        testbed.validation_split(data, 1.0, seed=0)


def test_validation_split_without_stratification_takes_classes_with_a_single_example():
    data = testbed.load("digits")[0]
    single = Dataset(data.name, data.x_train[:21], torch.arange(21) % 20, data.x_test, data.y_test, 20)
    with pytest.raises(ValueError, match="least populated class"):  # scikit-learn's refusal when stratified
        testbed.validation_split(single, 0.2, seed=0)
    split = testbed.validation_split(single, 0.2, seed=0, stratify=False)
    assert len(split.y_test) == 5 and len(split.y_train) == 16
    assert torch.equal(torch.sort(torch.cat([split.y_train, split.y_test])).values, torch.sort(single.y_train).values)
