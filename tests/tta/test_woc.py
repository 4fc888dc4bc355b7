"""The wisdom-of-crowds filter (WoC) against hand-built logits, sklearn's AUROC and hand-written TENT/EATA steps."""

import copy
import math

import numpy as np
import pytest
import scipy.stats
import torch
from _tta_models import DT, batch, bn_model, entropy, same, state

from regkit.tta import EATA, Tent, woc_confidence_gain, woc_mask


def _softmax(rows):
    rows = np.asarray(rows, dtype=float)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_confidence_gain_and_mask_against_hand_built_logits():
    source = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.2]]
    adapted = [
        [3.0, 0.0, 0.0],  # more confident in the source class 0: kept
        [0.0, 1.0, 1.0],  # still predicts 1 but less confidently: dropped
        [5.0, 0.0, 4.0],  # the prediction flips to class 0 and p(2) falls from 0.91 to 0.27: dropped
        [1.0, -2.0, -2.0],  # argmax unchanged, p(0) up: kept
        [0.5, 0.0, 0.2],  # identical to the source: kept (the rule is ≥)
    ]
    source_p, adapted_p = _softmax(source), _softmax(adapted)
    c0 = source_p.argmax(1)
    expected_gain = adapted_p[np.arange(5), c0] - source_p[np.arange(5), c0]
    gain = woc_confidence_gain(torch.tensor(adapted, dtype=DT), torch.tensor(source, dtype=DT))
    np.testing.assert_allclose(gain.numpy(), expected_gain, atol=1e-14)
    mask = woc_mask(torch.tensor(adapted, dtype=DT), torch.tensor(source, dtype=DT))
    assert mask.tolist() == [True, False, False, True, True]
    assert float(gain[4]) == 0.0


def test_mask_uses_the_source_prediction_not_the_adapted_one():
    # row 0: the adapted model now predicts class 1, but its confidence in the source class 0 rose: kept;
    # row 1: the adapted model predicts class 1 more confidently than the source did (a rule on the adapted
    # prediction would keep it), but its confidence in the source class 0 fell: dropped
    source = torch.tensor([[1.0, 0.0, 0.8], [1.0, 0.0, 0.8]], dtype=DT)
    adapted = torch.tensor([[4.0, 4.1, -9.0], [1.0, 4.0, 0.0]], dtype=DT)
    p0, p = source.softmax(1), adapted.softmax(1)
    assert p[0, 0] > p0[0, 0] and p[0].argmax() == 1  # the first row's premise
    assert p[1, 1] > p0[1, 1] and p[1, 0] < p0[1, 0]  # the second row's premise
    assert woc_mask(adapted, source).tolist() == [True, False]


def test_mask_with_an_entropy_threshold_against_scipy():
    g = torch.Generator().manual_seed(0)
    source = 2 * torch.randn(40, 5, generator=g, dtype=DT)
    adapted = source + torch.randn(40, 5, generator=g, dtype=DT)
    e0 = 0.4 * math.log(5)
    mask = woc_mask(adapted, source, e_margin=e0)
    gain = woc_confidence_gain(adapted, source)
    for i in range(40):
        h = scipy.stats.entropy(_softmax(adapted[i : i + 1].numpy())[0])
        assert bool(mask[i]) == (float(gain[i]) >= 0 and h < e0)
    assert 0 < int(mask.sum()) < int((gain >= 0).sum()) < 40  # both rules bite


def test_gain_is_detached_and_follows_dtype_and_device(device):
    source = torch.randn(6, 3, dtype=DT, device=device)
    adapted = (source + 0.5).requires_grad_(True)
    gain = woc_confidence_gain(adapted, source)
    assert not gain.requires_grad and gain.device == adapted.device and gain.dtype == DT


# ---------------------------------------------------------------------------------------------------------------------
def test_woc_tent_first_batch_keeps_everything_and_equals_tent():
    # before any update the adapted model is the source: every gain is exactly 0, every sample is kept
    model, x = bn_model(), batch()
    woc, plain = Tent(model, lr=0.5, momentum=0.0, filter="woc"), Tent(model, lr=0.5, momentum=0.0)
    assert torch.equal(woc(x), plain(x))
    assert bool(woc.last_mask.all()) and bool((woc.last_confidence_gain == 0).all())
    assert torch.equal(woc.model[1].weight, plain.model[1].weight) and torch.equal(
        woc.model[1].bias, plain.model[1].bias
    )
    assert int(woc.num_filter_kept) == 8 == int(woc.num_backward)


def test_woc_tent_step_uses_only_the_kept_samples():
    model, lr = bn_model(seed=3), 2.0
    woc = Tent(model, lr=lr, momentum=0.0, filter="woc")
    woc(batch(16, seed=4))  # the adapted model now differs from the source
    adapted = copy.deepcopy(woc.model)  # by hand, from this state: batch statistics, the filter, one SGD step
    source = copy.deepcopy(model).train()
    x = batch(16, seed=5)
    logits = adapted(x)
    with torch.no_grad():
        p0 = source(x).softmax(1)
    c0 = p0.argmax(1)
    keep = logits.softmax(1)[torch.arange(16), c0] >= p0[torch.arange(16), c0]
    assert 0 < int(keep.sum()) < 16  # the filter drops some samples and keeps others
    gw, gb = torch.autograd.grad(entropy(logits[keep]).mean(), [adapted[1].weight, adapted[1].bias])
    woc(x)
    assert woc.last_mask.tolist() == keep.tolist()
    assert torch.allclose(woc.model[1].weight, adapted[1].weight - lr * gw, atol=1e-12)
    assert torch.allclose(woc.model[1].bias, adapted[1].bias - lr * gb, atol=1e-12)
    assert int(woc.num_backward) == 16 + int(keep.sum()) == int(woc.num_filter_kept)
    # the source copy is frozen and outside the optimizer
    assert torch.equal(woc.source_model[1].weight, model[1].weight)
    assert not any(p.requires_grad for p in woc.source_model.parameters())


def test_woc_tent_takes_no_step_when_every_sample_is_filtered():
    model = bn_model(seed=6)
    woc = Tent(model, lr=0.5, momentum=0.9, filter="woc")
    plain = Tent(model, lr=0.5, momentum=0.9)
    woc(batch(seed=7))
    plain(batch(seed=7))
    with torch.no_grad():  # flatten the adapted features: near-uniform predictions, below every source confidence
        for method in (woc, plain):
            method.model[1].weight.zero_()
            method.model[1].bias.copy_(torch.tensor([0.05, -0.03, 0.02], dtype=DT))
    before, plain_before = state(woc), state(plain)
    optimizer_before = copy.deepcopy(woc.optimizer.state_dict())
    woc(batch(seed=8))
    plain(batch(seed=8))
    assert not bool(woc.last_mask.any())
    after = state(woc)
    assert int(after.pop("num_samples")) == int(before.pop("num_samples")) + 8
    assert same(after, before)  # parameters, counters of updates and backward passes, the filter's count
    assert torch.equal(
        woc.optimizer.state_dict()["state"][0]["momentum_buffer"], optimizer_before["state"][0]["momentum_buffer"]
    )
    # the same batch moves an unfiltered TENT: the test would see an update on the filtered samples
    assert not torch.equal(plain.model[1].bias, plain_before["model.1.bias"])


def test_woc_eata_combines_the_filter_with_eata_selection():
    model = bn_model(seed=3)
    e0 = 1.35  # the tiny model's predictions are uncertain: a threshold close to ln 4 leaves samples to filter
    eata = EATA(model, 4, e_margin=e0, d_margin=1.0, lr=2.0, momentum=0.0, filter="woc")
    selected, filtered_only = [], []
    for seed in range(10, 14):
        x = batch(16, seed=seed, shift=0.3)
        previous = int(eata.num_selected)
        logits = eata(x)
        reliable = entropy(logits) < e0
        expected = eata.last_mask & reliable  # d_margin = 1: the cosine rule keeps every non-parallel sample
        assert int(eata.num_selected) - previous == int(expected.sum())
        selected.append(int(expected.sum()))
        filtered_only.append(int((reliable & ~eata.last_mask).sum()))
    assert sum(filtered_only) > 0 and sum(selected) > 0  # WoC removed reliable samples that EATA alone would keep
    assert int(eata.num_backward) == sum(selected)


def test_a_nan_batch_raises_and_leaves_the_filtered_state_unchanged():
    model = bn_model(seed=11)
    woc, twin = Tent(model, lr=0.5, filter="woc"), Tent(model, lr=0.5, filter="woc")
    woc(batch(seed=12))
    twin(batch(seed=12))
    saved, mask = state(woc), woc.last_mask.clone()
    bad = batch(seed=13)
    bad[2, 0, 1, 1] = math.nan
    with pytest.raises(ValueError, match="x"):
        woc(bad)
    assert same(state(woc), saved) and torch.equal(woc.last_mask, mask)
    assert torch.equal(woc(batch(seed=14)), twin(batch(seed=14)))  # as if the NaN batch never came
    assert same(state(woc), state(twin))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: woc_mask(torch.zeros(3, 4), torch.zeros(3, 5)), "source_logits"),
        (lambda: woc_mask(torch.zeros(3, 4), torch.zeros(2, 4)), "source_logits"),
        (lambda: woc_mask(torch.zeros(3, 4), torch.tensor([[0.0, math.nan, 0, 0]] * 3)), "source_logits"),
        (lambda: woc_mask(torch.zeros(4), torch.zeros(4)), "logits"),
        (lambda: woc_mask(torch.zeros(3, 4), torch.zeros(3, 4), e_margin=0.0), "e_margin"),
        (lambda: woc_confidence_gain(torch.zeros(3, 1), torch.zeros(3, 1)), "logits"),
        (lambda: Tent(bn_model(), filter="entropy"), "filter"),
        (lambda: EATA(bn_model(), 4, filter="WoC"), "filter"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
