r"""Log-probabilities of sampled tokens and whole sequences under a policy's logits.

For next-token logits :math:`z_{t} \in \mathbb R^V` and the token :math:`o_t` taken at step
:math:`t`,

.. math::

    \log \pi_\theta(o_t \mid q, o_{<t}) = z_{t, o_t} - \log \sum_v e^{z_{t, v}},
    \qquad \log \pi_\theta(o \mid q) = \sum_t m_t \log \pi_\theta(o_t \mid q, o_{<t}),

the per-token terms that :func:`regkit.rl.grpo_loss` and :func:`regkit.rl.reinforce_loss`
differentiate, and their (masked) sum, the log-likelihood of a response. This is the gather of
the GRPO/PPO trainers (e.g. verl's ``logprobs_from_logits``, TRL's ``selective_log_softmax``).

Replicated in ``notebooks/aepo_entropy_control.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch

from regkit._checks import as_labels, as_mask, check_range, check_tensor, upcast_half

__all__ = ["sequence_logps", "token_logps"]


def token_logps(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of each taken token: ``log_softmax(logits)[..., t, tokens[..., t]]``.

    Args:
        logits: ``(..., L, V)`` floating next-token logits (−inf masks a vocabulary entry).
        tokens: ``(..., L)`` integer token ids in ``[0, V)`` (any integer dtype).

    Returns:
        ``(..., L)`` log-probabilities (nats, ≤ 0) in ``logits``' dtype (float16/bfloat16
        computed in float32); differentiable in ``logits``.

    Raises:
        TypeError: an argument is not a tensor.
        ValueError: naming the argument: non-floating logits, non-integer tokens, shapes that
            do not match, or a token id outside ``[0, V)``.
    """
    check_tensor("logits", logits, floating=True)
    tokens = as_labels("tokens", tokens)
    if logits.ndim < 1 or tuple(tokens.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"tokens must have shape {tuple(logits.shape[:-1])} (logits without the vocabulary "
            f"dimension), got {tuple(tokens.shape)}"
        )
    check_range("tokens", tokens, 0, logits.shape[-1])
    logps = upcast_half(logits).log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    return logps.to(logits.dtype)


def sequence_logps(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Log-likelihood of each sequence: the sum over ``L`` of :func:`token_logps` (valid positions only).

    Args:
        logits: ``(..., L, V)`` floating next-token logits.
        tokens: ``(..., L)`` integer token ids in ``[0, V)``.
        mask: optional ``(..., L)`` bool or 0/1; padded positions (false) contribute nothing,
            whatever their logits and token ids hold (a padded id must still lie in ``[0, V)``).

    Returns:
        ``(...)`` log-probabilities of the sequences (nats, ≤ 0) in ``logits``' dtype.

    Raises:
        TypeError, ValueError: as :func:`token_logps`; ``ValueError`` for a mask of the wrong
            shape or with entries other than 0/1.
    """
    logps = token_logps(logits, tokens)
    if mask is not None:
        logps = torch.where(as_mask("mask", mask, logps.shape), logps, 0.0)
    return logps.sum(-1)
