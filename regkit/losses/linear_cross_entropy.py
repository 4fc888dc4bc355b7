r"""Cut Cross-Entropy: the cross-entropy of a linear classifier without its logit matrix.

Wijmans, Huval, Hertzberg, Koltun & Krähenbühl, "Cut Your Losses in Large-Vocabulary
Language Models", ICLR 2025, arXiv:2411.09009.

For hidden states :math:`e_i \in \mathbb R^d`, classifier rows :math:`c_v` and labels
:math:`y_i`,

.. math::

    \ell_i = \underbrace{\log \sum_{v=1}^{V} \exp(e_i^\top c_v + b_v)}_{\mathrm{LSE}_i}
             - (e_i^\top c_{y_i} + b_{y_i}) \;+\; \zeta\, \mathrm{LSE}_i^2 .

The :math:`N \times V` logit matrix is never stored. The forward pass computes
:math:`\mathrm{LSE}` tile by tile (token block × vocabulary block) with an online max/sum
and keeps only the :math:`N` values. The backward pass recomputes each tile,
:math:`S = \exp(\text{tile} - \mathrm{LSE})`, and accumulates

.. math::

    \nabla e \mathrel{+}= (g \odot (1 + 2\zeta\,\mathrm{LSE})\, S)\, C_{\text{blk}}, \qquad
    \nabla C_{\text{blk}} \mathrel{+}= (g \odot (1 + 2\zeta\,\mathrm{LSE})\, S)^\top e,

while the target term :math:`-\mathrm{onehot}(y)` is applied once with an indexed add.
**Gradient filtering**: a tile whose softmax entries are all below ``filter_eps`` (by
default ``finfo(dtype).eps / 32``, i.e. :math:`2^{-12}` for bfloat16, as in the authors'
``ml-cross-entropy``) contributes nothing representable and is skipped; pass a
:class:`LinearCrossEntropyStats` to read how many were.

Extra memory: one tile plus ``N`` floats in the forward pass and one tile plus the
gradients in the backward pass, independent of ``N·V``. Half-precision inputs are
computed in float32 tile by tile and the gradients cast back.

Shapes: hidden ``(..., d)``, weight ``(V, d)``, bias ``(V,)``, labels ``(...)`` integers.

Replicated in ``notebooks/cut_cross_entropy.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regkit._checks import (
    as_labels,
    check_choice,
    check_number,
    check_reduction,
    check_tensor,
)

__all__ = ["LinearCrossEntropyStats", "linear_cross_entropy"]


@dataclass
class LinearCrossEntropyStats:
    """Filled by the backward pass: how many (token block × vocabulary block) tiles there
    were and how many gradient filtering skipped."""

    tiles: int = 0
    skipped: int = 0

    @property
    def skipped_fraction(self) -> float:
        """Share of vocabulary tiles whose gradient was skipped, in ``[0, 1]`` (0 before any tile)."""
        return self.skipped / self.tiles if self.tiles else 0.0


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _blocks(n: int, size: int):
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _tile(hidden_block, weight_block, bias_block, out):
    """``hidden_block @ weight_block.T (+ bias)`` written into ``out``."""
    torch.matmul(hidden_block, weight_block.T, out=out)
    if bias_block is not None:
        out += bias_block
    return out


def _lse(hidden, weight, bias, token_chunk, vocab_chunk):
    """Row-wise log-sum-exp of ``hidden @ weight.T + bias``, one tile at a time."""
    n, vocab = hidden.shape[0], weight.shape[0]
    lse = torch.empty(n, dtype=hidden.dtype, device=hidden.device)
    buffer = torch.empty(min(token_chunk, n) * min(vocab_chunk, vocab), dtype=hidden.dtype, device=hidden.device)
    lowest = torch.finfo(hidden.dtype).min
    for rows in _blocks(n, token_chunk):
        running_max = torch.full((rows.stop - rows.start,), -torch.inf, dtype=hidden.dtype, device=hidden.device)
        running_sum = torch.zeros_like(running_max)
        for cols in _blocks(vocab, vocab_chunk):
            tile = buffer[: (rows.stop - rows.start) * (cols.stop - cols.start)].view(rows.stop - rows.start, -1)
            _tile(hidden[rows], weight[cols], None if bias is None else bias[cols], tile)
            new_max = torch.maximum(running_max, tile.amax(1))
            # a tile (or a row so far) whose entries are all -inf is valid: shift by a finite
            # stand-in so that -inf - (-inf) never occurs (exp(-inf - lowest) = 0 as wanted)
            shift = new_max.clamp(min=lowest)
            running_sum.mul_((running_max - shift).exp_())
            running_sum += tile.sub_(shift[:, None]).exp_().sum(1)
            running_max = new_max
        lse[rows] = running_max + running_sum.log()
    return lse


def _accumulate_gradients(
    h, w, b, labels, g, softmax_scale, lse, grad_h, grad_w, grad_b, token_chunk, vocab_chunk, filter_eps
) -> tuple[int, int]:
    """Add the gradients of ``Σ g_i · loss_i`` w.r.t. ``h``, ``w`` (and ``b``) into the given buffers.

    dL/dlogits = ``softmax_scale[:, None] · softmax(logits) − g[:, None] · onehot(labels)``: the one-hot part
    once for all tokens (rows with ``g = 0`` contribute nothing), the softmax part tile by tile, recomputing
    each tile's logits from ``lse`` (shape ``(N,)``) in one reused buffer. A tile whose largest probability
    is below ``filter_eps`` is skipped (gradient filtering). Returns ``(tiles, skipped)``. Shared by the
    single-process and the vocabulary-parallel backward (there ``w`` is the local shard and ``g`` is zero
    where another rank owns the target).
    """
    n, vocab = h.shape[0], w.shape[0]
    grad_h -= g[:, None] * w[labels]
    grad_w.index_add_(0, labels, -g[:, None] * h)
    if grad_b is not None:
        grad_b.index_add_(0, labels, -g)
    if not vocab or not n:
        return 0, 0
    buffer = torch.empty(min(token_chunk, n) * min(vocab_chunk, vocab), dtype=h.dtype, device=h.device)
    tiles = skipped = 0
    for cols in _blocks(vocab, vocab_chunk):
        w_block = w[cols]
        for rows in _blocks(n, token_chunk):
            tiles += 1
            tile = buffer[: (rows.stop - rows.start) * (cols.stop - cols.start)].view(rows.stop - rows.start, -1)
            _tile(h[rows], w_block, None if b is None else b[cols], tile)
            probs = tile.sub_(lse[rows, None]).exp_()
            if filter_eps is not None and float(probs.amax()) < filter_eps:
                skipped += 1
                continue
            probs.mul_(softmax_scale[rows, None])
            grad_h[rows].addmm_(probs, w_block)
            grad_w[cols].addmm_(probs.T, h[rows])
            if grad_b is not None:
                grad_b[cols] += probs.sum(0)
    return tiles, skipped


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, valid, z_loss, token_chunk, vocab_chunk, filter_eps, stats):
        dtype = _compute_dtype(hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        lse = _lse(h, w, b, token_chunk, vocab_chunk)
        safe_labels = torch.where(valid, labels, 0)
        target_logit = (h * w[safe_labels]).sum(1)
        if b is not None:
            target_logit += b[safe_labels]
        losses = lse - target_logit
        if z_loss:
            losses += z_loss * lse.square()
        losses = torch.where(valid, losses, 0.0)
        ctx.save_for_backward(hidden, weight, bias, safe_labels, valid, lse)
        ctx.settings = (z_loss, token_chunk, vocab_chunk, filter_eps, stats)
        return losses.to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_losses):
        hidden, weight, bias, labels, valid, lse = ctx.saved_tensors
        z_loss, token_chunk, vocab_chunk, filter_eps, stats = ctx.settings
        dtype = _compute_dtype(hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        g = torch.where(valid, grad_losses.to(dtype), 0.0)
        softmax_scale = g * (1 + 2 * z_loss * lse) if z_loss else g

        grad_h = torch.zeros_like(h)
        grad_w = torch.zeros_like(w)
        grad_b = None if b is None else torch.zeros_like(b)
        tiles, skipped = _accumulate_gradients(
            h, w, b, labels, g, softmax_scale, lse, grad_h, grad_w, grad_b, token_chunk, vocab_chunk, filter_eps
        )
        if stats is not None:
            stats.tiles += tiles
            stats.skipped += skipped
        grads = [grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None if bias is None else grad_b.to(bias.dtype)]
        grads = [grad if ctx.needs_input_grad[i] else None for i, grad in enumerate(grads)]
        return (*grads, None, None, None, None, None, None, None)


def _check_inputs(hidden, weight, labels, bias, ignore_index) -> torch.Tensor:
    check_tensor("hidden", hidden, floating=True)
    check_tensor("weight", weight, ndim=2, floating=True)
    labels = as_labels("labels", labels)
    if hidden.ndim < 1 or hidden.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"hidden's last dimension must equal weight's second (d): hidden has shape {tuple(hidden.shape)}, "
            f"weight {tuple(weight.shape)}"
        )
    if labels.shape != hidden.shape[:-1]:
        raise ValueError(
            f"labels must have hidden's leading shape {tuple(hidden.shape[:-1])}, got {tuple(labels.shape)}"
        )
    if bias is not None:
        check_tensor("bias", bias, ndim=1, floating=True)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    vocab = weight.shape[0]
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= vocab))
    if bool(bad.any()):
        value = int(labels[bad][0])
        raise ValueError(f"labels must lie in [0, {vocab}) or equal ignore_index={ignore_index}, found {value}")
    return labels


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int = 4096,
    token_chunk_size: int = 1024,
    z_loss: float = 0.0,
    filter_eps: float | str | None = "auto",
    stats: LinearCrossEntropyStats | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of ``hidden @ weight.T + bias`` against ``labels``, in tiles.

    Equals ``F.cross_entropy(hidden @ weight.T + bias, labels, ignore_index=...,
    reduction=...)`` (plus ``z_loss · LSE²`` per token) without materializing the logits.

    Args:
        hidden: ``(..., d)`` hidden states (embeddings) :math:`e_i`.
        weight: ``(V, d)`` classifier matrix :math:`C`.
        labels: ``(...)`` class ids in ``[0, V)``, or ``ignore_index``; any integer
            dtype, used as int64 (uint8 ids give what ``F.cross_entropy`` gives); bool is
            rejected. The name follows ``F.cross_entropy``'s ``target``.
        bias: optional ``(V,)`` bias.
        ignore_index: target value that contributes neither loss nor gradient; ``"mean"``
            averages over the other tokens.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (a tensor shaped like ``labels``).
        chunk_size: vocabulary columns per tile.
        token_chunk_size: tokens per tile.
        z_loss: weight :math:`\zeta \ge 0` of the auxiliary :math:`\mathrm{LSE}^2` term.
        filter_eps: skip backward tiles whose softmax values are all below this; ``"auto"``
            is ``finfo(hidden.dtype).eps / 32``, ``None`` disables filtering (exact gradients).
        stats: a :class:`LinearCrossEntropyStats` the backward pass adds its tile counts to.

    Returns:
        a scalar, or ``(...)`` losses for ``"none"``, in ``hidden``'s dtype (float16/bfloat16
        are computed in float32). −inf bias entries (masked vocabulary) are allowed; the
        result does not depend on ``chunk_size``/``token_chunk_size``, even when a tile is
        entirely −inf.

    Raises:
        ValueError: naming the argument: a shape mismatch, a non-floating ``hidden``/``weight``/
            ``bias``, bool or floating ``labels``, a target outside ``[0, V)`` other than
            ``ignore_index``, an unknown ``reduction``, a chunk size below 1, a negative
            ``z_loss`` or ``filter_eps``.
    """
    ignore_index = check_number("ignore_index", ignore_index, integer=True)
    labels = _check_inputs(hidden, weight, labels, bias, ignore_index)
    check_reduction(reduction)
    chunk_size = check_number("chunk_size", chunk_size, low=1, integer=True)
    token_chunk_size = check_number("token_chunk_size", token_chunk_size, low=1, integer=True)
    z_loss = check_number("z_loss", z_loss, low=0)
    if isinstance(filter_eps, str):
        check_choice("filter_eps", filter_eps, ("auto",))
        filter_eps = torch.finfo(hidden.dtype).eps / 32
    elif filter_eps is not None:
        filter_eps = check_number("filter_eps", filter_eps, low=0)
    if stats is not None and not isinstance(stats, LinearCrossEntropyStats):
        raise ValueError(f"stats must be a LinearCrossEntropyStats or None, got {type(stats).__name__}")

    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_labels = labels.reshape(-1)
    valid = flat_labels != ignore_index
    losses = _LinearCrossEntropy.apply(
        flat_hidden,
        weight,
        bias,
        flat_labels,
        valid,
        float(z_loss),
        int(token_chunk_size),
        int(chunk_size),
        filter_eps,
        stats,
    )
    if reduction == "none":
        return losses.view(labels.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / valid.sum()
