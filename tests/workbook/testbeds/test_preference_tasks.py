"""The preference testbed: seeded tasks, Bradley–Terry labels, exact policy statistics."""

import math

import pytest
import torch

from regkit.workbook.testbeds.preference_tasks import policy_stats, preference_task


def test_task_shapes_and_pairs_are_consistent():
    task = preference_task(0, prompts=4, responses=5, pairs=100)
    assert task.ref_logits.shape == task.reward.shape == (4, 5)
    torch.testing.assert_close(task.ref_logp.exp().sum(1), torch.ones(4, dtype=torch.float64))
    for pairs in (task.train_pairs, task.test_pairs):
        assert pairs.prompt.shape == (100,) and int(pairs.prompt.max()) < 4 and int(pairs.first.max()) < 5
        torch.testing.assert_close(torch.where(pairs.prefer_first, pairs.first, pairs.second), pairs.chosen)
        torch.testing.assert_close(torch.where(pairs.prefer_first, pairs.second, pairs.first), pairs.rejected)
    again = preference_task(0, prompts=4, responses=5, pairs=100)
    torch.testing.assert_close(again.test_pairs.chosen, task.test_pairs.chosen)


def test_labels_follow_bradley_terry_on_the_hidden_reward():
    task = preference_task(1, prompts=2, responses=3, pairs=200_000)
    pairs = task.train_pairs
    margin = task.reward[pairs.prompt, pairs.first] - task.reward[pairs.prompt, pairs.second]
    assert abs(float(pairs.prefer_first.double().mean() - torch.sigmoid(margin).mean())) < 5e-3


def test_policy_stats_on_hand_made_policies():
    reward = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    uniform = torch.full((2, 2), 0.5, dtype=torch.float64).log()
    stats = policy_stats(uniform, reward)
    assert stats["reward"] == pytest.approx((0.5 + 1.5) / 2)
    assert stats["entropy"] == pytest.approx(math.log(2))
    best = torch.tensor([[1.0, 1e-300], [1e-300, 1.0]], dtype=torch.float64).log()
    assert policy_stats(best, reward) == pytest.approx({"reward": 2.0, "entropy": 0.0}, abs=1e-12)
