"""The RL testbed: the digit-sum reward on hand-made responses, the policy's sampling and exact pass@k."""

import numpy as np
import pytest
import torch

from regkit.workbook.testbeds.rl_tasks import (
    AutoregressivePolicy,
    all_responses,
    digit_sum_reward,
    exact_success,
    pass_at_k_exact,
)


def test_reward_is_one_iff_valid_tokens_sum_to_the_prompt_mod_8():
    prompts = torch.tensor([3, 3, 0, 5, 7])
    responses = torch.tensor(
        [
            [1, 1, 1, 0],  # sum 3 → correct
            [1, 1, 1, 1],  # sum 4 → wrong
            [7, 1, 0, 0],  # sum 8 ≡ 0 → correct
            [8, 5, 0, 0],  # token 8 invalid (even though 13 ≡ 5)
            [7, 7, 7, 2],
        ]
    )  # 23 ≡ 7 → correct
    assert digit_sum_reward(prompts, responses).tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert digit_sum_reward(prompts, responses).dtype == torch.float64


def test_every_prompt_has_8_cubed_correct_responses():
    responses = all_responses(12, 4)
    assert responses.shape == (12**4, 4)
    for t in range(8):
        assert int(digit_sum_reward(torch.full((len(responses),), t), responses).sum()) == 8**3


def test_exact_success_of_the_uniform_policy_and_its_pass_at_k():
    policy = AutoregressivePolicy()
    torch.nn.init.zeros_(policy.net[2].weight)
    torch.nn.init.zeros_(policy.net[2].bias)  # uniform over 12 tokens at every position
    success = exact_success(policy)
    np.testing.assert_allclose(success, np.full(8, 8**3 / 12**4), rtol=1e-5)
    p = 8**3 / 12**4
    assert pass_at_k_exact(success, 8) == pytest.approx(1 - (1 - p) ** 8, rel=1e-5)
    assert pass_at_k_exact(np.array([0.0, 1.0]), 3) == 0.5


def test_exact_success_matches_the_sequence_probabilities_summing_to_one():
    torch.manual_seed(0)
    policy = AutoregressivePolicy()
    responses = all_responses()
    with torch.no_grad():
        logits = policy.sequence_logits(torch.zeros(len(responses), dtype=torch.long), responses)
    total = logits.log_softmax(-1).gather(-1, responses[..., None]).sum((1, 2)).exp().sum()
    assert float(total) == pytest.approx(1.0, rel=1e-4)
    assert ((exact_success(policy) > 0) & (exact_success(policy) < 1)).all()


def test_sampling_is_seeded_and_greedy_at_low_temperature():
    torch.manual_seed(1)
    policy = AutoregressivePolicy()
    prompts = torch.arange(8)
    a = policy.sample(prompts, 1.0, torch.Generator().manual_seed(0))
    b = policy.sample(prompts, 1.0, torch.Generator().manual_seed(0))
    assert a.shape == (8, 4) and torch.equal(a, b) and int(a.max()) < 12
    cold = policy.sample(prompts, 1e-4, torch.Generator().manual_seed(0))
    logits = policy.sequence_logits(prompts, cold)
    assert torch.equal(cold, logits.argmax(-1))  # teacher-forced argmax reproduces the greedy samples
