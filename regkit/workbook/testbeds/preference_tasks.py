"""A preference task small enough to compute every metric exactly.

``prompts × responses`` outcomes, a reference policy π_ref = softmax of random logits, a hidden reward
r* ~ N(0, 1) per (prompt, response), and pairs drawn from π_ref labelled by Bradley–Terry on r*
(:func:`preference_task`). A policy is a table of log-probabilities (prompts, responses), so its expected
reward and entropy are exact sums (:func:`policy_stats`).

Used by the notebook ``f_dpo`` (32 prompts × 64 responses, 4,096 training and 4,096 held-out pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PreferencePairs", "PreferenceTask", "policy_stats", "preference_task"]


@dataclass
class PreferencePairs:
    """``n`` labelled pairs: ``prompt`` (n,); ``first``/``second`` (n,), the two responses drawn from π_ref in
    draw order; ``prefer_first`` (n,) bool, the Bradley–Terry label; ``chosen``/``rejected`` (n,), the pair
    reordered by the label."""

    prompt: Tensor
    first: Tensor
    second: Tensor
    prefer_first: Tensor
    chosen: Tensor
    rejected: Tensor


@dataclass
class PreferenceTask:
    """``ref_logits`` and ``ref_logp`` (P, R) float64 (π_ref = softmax of ``ref_logits`` over responses),
    ``reward`` (P, R) float64 (r*), ``train_pairs`` and ``test_pairs``."""

    ref_logits: Tensor
    ref_logp: Tensor
    reward: Tensor
    train_pairs: PreferencePairs
    test_pairs: PreferencePairs


def preference_task(seed: int, prompts: int = 32, responses: int = 64, pairs: int = 4096) -> PreferenceTask:
    """Draw a task from one generator seeded ``seed``, in this order: the reference logits, the hidden
    reward, then the training pairs and the held-out pairs (each: prompts uniform, two responses from
    π_ref with replacement, then the label: first preferred with probability σ(r*(x, y1) − r*(x, y2)))."""
    g = torch.Generator().manual_seed(seed)
    ref_logits = torch.randn(prompts, responses, generator=g, dtype=torch.float64)
    ref_logp = ref_logits.log_softmax(1)
    reward = torch.randn(prompts, responses, generator=g, dtype=torch.float64)

    def draw_pairs(n: int) -> PreferencePairs:
        x = torch.randint(0, prompts, (n,), generator=g)
        y = torch.multinomial(ref_logp[x].exp(), 2, replacement=True, generator=g)
        margin = reward[x, y[:, 0]] - reward[x, y[:, 1]]
        prefer_first = torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(margin)
        chosen = torch.where(prefer_first, y[:, 0], y[:, 1])
        rejected = torch.where(prefer_first, y[:, 1], y[:, 0])
        return PreferencePairs(x, y[:, 0], y[:, 1], prefer_first, chosen, rejected)

    train_pairs = draw_pairs(pairs)
    return PreferenceTask(ref_logits, ref_logp, reward, train_pairs, draw_pairs(pairs))


def policy_stats(logp: Tensor, reward: Tensor) -> dict[str, float]:
    """Exact statistics of a table policy with log-probabilities ``logp`` (P, R): ``reward``,
    E_x E_{y ~ π(·|x)}[r*(x, y)], and ``entropy``, E_x H(π(·|x)) in nats (prompts weighted uniformly)."""
    p = logp.exp()
    return {"reward": float((p * reward).sum(1).mean()), "entropy": float(-(p * logp).sum(1).mean())}
