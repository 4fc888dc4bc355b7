r"""Vocabulary-parallel linear cross-entropy: the classifier sharded by rows across ranks,
the logits never materialized.

Tensor-parallel training of large-vocabulary models splits the classifier
:math:`C \in \mathbb R^{V \times d}` by vocabulary rows over a process group of :math:`W`
ranks: rank :math:`r` holds rows :math:`[o_r, o_r + V_r)` (shards may be uneven), every rank
holds the same hidden states :math:`e \in \mathbb R^{N \times d}` and the same global target
ids :math:`y`. This is Megatron-LM's vocab-parallel cross-entropy (Shoeybi et al., arXiv:1909.08053,
``megatron/core/tensor_parallel/cross_entropy.py``) fused with the tiled, logit-free
computation of Cut Cross-Entropy (Wijmans et al., arXiv:2411.09009,
:mod:`regkit.losses.linear_cross_entropy`); Megatron builds the local ``N × V_r`` logits,
this module never does.

Forward, per token :math:`i` (:math:`\mathrm{LSE}^{(r)}_i` over the local shard, computed
tile by tile):

.. math::

    m_i = \max_r \mathrm{LSE}^{(r)}_i \;(\text{all-reduce max}), \qquad
    \mathrm{LSE}_i = m_i + \log \sum_r e^{\mathrm{LSE}^{(r)}_i - m_i} \;(\text{all-reduce sum}),

    z_{i, y_i} = \sum_r \mathbb 1[y_i \in \text{shard}_r]\,(e_i^\top c_{y_i} + b_{y_i})
    \;(\text{the same all-reduce sum}), \qquad
    \ell_i = \mathrm{LSE}_i - z_{i, y_i} + \zeta\,\mathrm{LSE}_i^2 .

Backward: each rank recomputes its tiles :math:`S = \exp(\text{tile} - \mathrm{LSE})` with the
*global* LSE and forms its gradient of the local weight (and bias) shard, exact and local; its
partial gradient of the hidden states is all-reduced (summed), since the logits of every
shard depend on :math:`e`.

Communication per call: forward, one all-gather of :math:`W` pairs (shard offset, size), one
all-reduce of :math:`N` numbers (max) and one of :math:`2N` (sum-exp and target logit):
:math:`O(N)`, never :math:`N \times V`. Backward, one all-reduce of the :math:`N \times d`
gradient of the hidden states (what the column-parallel classifier's backward all-reduces
anyway). Extra memory per rank: one tile plus :math:`O(N)` floats in the forward pass, the
tile and the gradients in the backward pass.

Shapes: hidden ``(..., d)``, weight ``(V_r, d)`` (the local shard), bias ``(V_r,)``, labels
``(...)`` global ids in ``[0, V)`` or ``ignore_index``; the loss is identical on every rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from regkit._checks import check_choice, check_number, check_reduction
from regkit.distributed import world_size
from regkit.losses.linear_cross_entropy import (
    LinearCrossEntropyStats,
    _accumulate_gradients,
    _check_inputs,
    _compute_dtype,
    _lse,
    linear_cross_entropy,
)

__all__ = ["vocab_parallel_linear_cross_entropy"]


def _shard_layout(vocab_local: int, vocab_start: int | None, device, group) -> tuple[int, int]:
    """This rank's vocabulary offset and the global vocabulary size, from all ranks' (offset, size)."""
    world = world_size(group)
    mine = torch.tensor(
        [-1 if vocab_start is None else int(vocab_start), vocab_local], dtype=torch.int64, device=device
    )
    pairs = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(pairs, mine, group=group)
    starts, sizes = zip(*(pair.tolist() for pair in pairs))
    vocab = sum(sizes)
    if vocab_start is None:
        if any(start != -1 for start in starts):
            raise ValueError("vocab_start must be given on every rank or on none")
        rank = dist.get_rank(group)
        return sum(sizes[:rank]), vocab
    if any(start == -1 for start in starts):
        raise ValueError("vocab_start must be given on every rank or on none")
    covered = sorted(zip(starts, sizes))
    expected = 0
    for start, size in covered:
        if start != expected:
            raise ValueError(
                f"vocab_start must make the shards tile [0, {vocab}) without gaps or overlaps; "
                f"got (vocab_start, rows) = {list(zip(starts, sizes))}"
            )
        expected += size
    return int(vocab_start), vocab


class _VocabParallelLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        bias,
        labels,
        valid,
        vocab_start,
        z_loss,
        token_chunk,
        vocab_chunk,
        filter_eps,
        stats,
        group,
    ):
        dtype = _compute_dtype(hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        n, vocab_local = h.shape[0], w.shape[0]
        if vocab_local:
            local_lse = _lse(h, w, b, token_chunk, vocab_chunk)
        else:
            local_lse = torch.full((n,), -torch.inf, dtype=dtype, device=h.device)
        global_max = local_lse.clone()
        dist.all_reduce(global_max, op=dist.ReduceOp.MAX, group=group)

        local_labels = labels - vocab_start
        owned = valid & (local_labels >= 0) & (local_labels < vocab_local)
        safe_labels = torch.where(owned, local_labels, 0)
        combined = torch.zeros(2, n, dtype=dtype, device=h.device)
        torch.exp(local_lse - global_max, out=combined[0])
        if vocab_local:
            target_logit = (h * w[safe_labels]).sum(1)
            if b is not None:
                target_logit += b[safe_labels]
            combined[1] = torch.where(owned, target_logit, 0.0)
        dist.all_reduce(combined, op=dist.ReduceOp.SUM, group=group)
        lse = global_max + combined[0].log()
        losses = lse - combined[1]
        if z_loss:
            losses += z_loss * lse.square()
        losses = torch.where(valid, losses, 0.0)
        ctx.save_for_backward(hidden, weight, bias, safe_labels, owned, valid, lse)
        ctx.settings = (z_loss, token_chunk, vocab_chunk, filter_eps, stats, group)
        return losses.to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_losses):
        hidden, weight, bias, labels, owned, valid, lse = ctx.saved_tensors
        z_loss, token_chunk, vocab_chunk, filter_eps, stats, group = ctx.settings
        dtype = _compute_dtype(hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        vocab_local = w.shape[0]
        g = torch.where(valid, grad_losses.to(dtype), 0.0)
        softmax_scale = g * (1 + 2 * z_loss * lse) if z_loss else g

        grad_h = torch.zeros_like(h)
        grad_w = torch.zeros_like(w)
        grad_b = None if b is None else torch.zeros_like(b)
        if vocab_local:
            # the -onehot(y) part of dL/dlogits only on the rank that owns each target
            tiles, skipped = _accumulate_gradients(
                h, w, b, labels, torch.where(owned, g, 0.0), softmax_scale, lse, grad_h, grad_w, grad_b,
                token_chunk, vocab_chunk, filter_eps,
            )  # fmt: skip
        else:
            tiles = skipped = 0
        if ctx.needs_input_grad[0]:
            dist.all_reduce(grad_h, op=dist.ReduceOp.SUM, group=group)
        if stats is not None:
            stats.tiles += tiles
            stats.skipped += skipped
        grads = [grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None if bias is None else grad_b.to(bias.dtype)]
        grads = [grad if ctx.needs_input_grad[i] else None for i, grad in enumerate(grads)]
        return (*grads, *([None] * 9))


def vocab_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    vocab_start: int | None = None,
    process_group=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int = 4096,
    token_chunk_size: int = 1024,
    z_loss: float = 0.0,
    filter_eps: float | str | None = "auto",
    stats: LinearCrossEntropyStats | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of ``hidden @ W.T + b`` where this rank holds rows of ``W`` (and ``b``).

    Equals :func:`regkit.losses.linear_cross_entropy` with the full classifier (the
    concatenation of the shards in vocabulary order) on every rank; the gradients with
    respect to ``hidden`` (summed over ranks) and to the local ``weight``/``bias`` shard are
    those of the full problem. A collective: every rank of ``process_group`` must call it
    with the same ``hidden`` values, ``labels`` and settings.

    Args:
        hidden: ``(..., d)`` hidden states, the same on every rank.
        weight: ``(V_r, d)`` this rank's rows of the classifier (``V_r`` may differ between
            ranks and may be 0).
        labels: ``(...)`` *global* class ids in ``[0, V)`` or ``ignore_index``.
        bias: optional ``(V_r,)`` this rank's entries of the bias.
        vocab_start: global id of this rank's first row; ``None`` (on every rank) places the
            shards in rank order, offsets from the all-gathered shard sizes.
        process_group: the tensor-parallel group (default: the world). Without an
            initialized process group (or with one rank) this is
            :func:`~regkit.losses.linear_cross_entropy` (``vocab_start`` must be 0 or ``None``).
        ignore_index, reduction, chunk_size, token_chunk_size, z_loss, filter_eps, stats: as
            in :func:`~regkit.losses.linear_cross_entropy` (``stats`` counts this rank's tiles).
    """
    if world_size(process_group) == 1:
        if vocab_start not in (None, 0):
            raise ValueError(
                f"vocab_start must be 0 or None without a process group of several ranks, got {vocab_start}"
            )
        return linear_cross_entropy(
            hidden,
            weight,
            labels,
            bias=bias,
            ignore_index=ignore_index,
            reduction=reduction,
            chunk_size=chunk_size,
            token_chunk_size=token_chunk_size,
            z_loss=z_loss,
            filter_eps=filter_eps,
            stats=stats,
        )

    # shapes and dtypes as on one process; the target range is checked against the global V below
    _check_inputs(hidden, weight, torch.full_like(labels, ignore_index), bias, ignore_index)
    check_reduction(reduction)
    chunk_size = check_number("chunk_size", chunk_size, low=1, integer=True)
    token_chunk_size = check_number("token_chunk_size", token_chunk_size, low=1, integer=True)
    z_loss = check_number("z_loss", z_loss, low=0)
    if isinstance(filter_eps, str):
        check_choice("filter_eps", filter_eps, ("auto",))
        filter_eps = torch.finfo(hidden.dtype).eps / 32
    elif filter_eps is not None:
        filter_eps = check_number("filter_eps", filter_eps, low=0)
    if vocab_start is not None:
        vocab_start = check_number("vocab_start", vocab_start, low=0, integer=True)

    start, vocab = _shard_layout(weight.shape[0], vocab_start, hidden.device, process_group)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= vocab))
    if bool(bad.any()):
        raise ValueError(
            f"labels must lie in [0, {vocab}) or equal ignore_index={ignore_index}, found {int(labels[bad][0])}"
        )

    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_labels = labels.reshape(-1)
    valid = flat_labels != ignore_index
    losses = _VocabParallelLinearCrossEntropy.apply(
        flat_hidden,
        weight,
        bias,
        flat_labels,
        valid,
        start,
        float(z_loss),
        int(token_chunk_size),
        int(chunk_size),
        filter_eps,
        stats,
        process_group,
    )
    if reduction == "none":
        return losses.view(labels.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / valid.sum()
