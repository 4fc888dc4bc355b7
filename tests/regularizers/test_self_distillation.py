"""PS-KD: the target schedule, the module, and the soft cross-entropy."""

import pytest
import torch

from regkit.regularizers import (
    PSKD,
    soft_cross_entropy,
)


def test_pskd_schedule_and_targets():
    pskd = PSKD(num_examples=4, num_classes=3, epochs=10, alpha_T=0.8)
    y, index = torch.tensor([0, 2]), torch.tensor([1, 3])
    assert torch.equal(pskd.targets(y, index, 0), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    pskd.record(logits, index)
    pskd.end_epoch()
    a = 0.8 * 5 / 10
    assert pskd.alpha(5) == pytest.approx(a)
    expected = (1 - a) * torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]) + a * logits.softmax(1)
    assert torch.allclose(pskd.targets(y, index, 5), expected)
    assert torch.allclose(pskd.targets(y, index, 5).sum(1), torch.ones(2))
    assert int(pskd.epoch) == 1 and pskd.alpha(1) == pytest.approx(0.08)
    expected_now = (1 - 0.08) * torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]) + 0.08 * logits.softmax(1)
    assert torch.allclose(pskd.targets(y, index), expected_now)  # the default epoch is the module's counter


def test_pskd_module_is_the_soft_cross_entropy_with_its_targets_and_records_in_training_mode():
    pskd = PSKD(4, 3, epochs=4, alpha_T=0.8, reduction="sum")
    assert isinstance(pskd, torch.nn.Module)
    assert set(dict(pskd.named_buffers())) == {"previous", "current", "epoch"}
    y, index = torch.tensor([0, 2]), torch.tensor([1, 3])
    first = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    loss = pskd(first, y, index)  # epoch 0: plain cross-entropy with the labels
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(first, y, reduction="sum"))
    torch.testing.assert_close(pskd.current[index], first.softmax(1))
    pskd.end_epoch()
    second = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    target = 0.8 * torch.nn.functional.one_hot(y, 3) + 0.2 * first.softmax(1)  # α_1 = 0.8 · 1/4
    torch.testing.assert_close(pskd(second, y, index), -(target * second.log_softmax(1)).sum())
    pskd.eval()
    before = pskd.current.clone()
    pskd(torch.zeros(2, 3), y, index)
    torch.testing.assert_close(pskd.current, before)  # eval mode leaves the state alone
    restored = PSKD(4, 3, epochs=4)
    restored.load_state_dict(pskd.state_dict())
    assert int(restored.epoch) == 1 and torch.equal(restored.previous, pskd.previous)


def test_soft_cross_entropy_equals_cross_entropy_for_one_hot():
    logits, y = torch.randn(7, 4), torch.randint(0, 4, (7,))
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 4).float()), ce)


@pytest.mark.parametrize("fn, match", [(lambda: PSKD(4, 3, epochs=5, alpha_T=1.5), "alpha_T")])
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
