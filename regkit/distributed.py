r"""Per-example state under ``torch.distributed``: every rank keeps the whole table.

Losses with one state row per training example (:class:`regkit.losses.ELRLoss`'s
temporal-ensemble targets, :class:`regkit.regularizers.PSKD`'s saved predictions,
:class:`regkit.losses.ALDRKLLoss`'s per-example :math:`\lambda_i`) update only the rows of the
examples in the local batch. Under ``DistributedDataParallel`` with a ``DistributedSampler``
that reshuffles every epoch, an example seen by rank 0 in one epoch is seen by rank 1 in the
next, whose copy of its row was never updated. :func:`sync_rows` repairs that: after a local
update of the rows ``index`` of a table ``state`` (shape ``(N, *row)``), every rank sends its
``(index, state[index])`` pairs to every other rank and writes all of them, so that every
rank's table equals the one single-process training over the same global batches (the
concatenation of the ranks' batches) would hold.

**Communication per call** (world size :math:`W`, local batch :math:`B_r`,
:math:`B = \max_r B_r`, :math:`s` numbers of ``itemsize`` bytes per state row):

1. ``all_gather`` of the batch sizes: :math:`W` int64 received per rank;
2. ``all_gather`` of one packed byte tensor ``(B, 8 + s \cdot \text{itemsize})`` per rank (the
   int64 index and the row, viewed as bytes, padded to :math:`B` rows, trimmed after):
   :math:`W B (8 + s \cdot \text{itemsize})` bytes received per rank.

So two latency-bound collectives per state update and :math:`O(W B s)` bytes, independent of
the table size :math:`N`; ELR and PS-KD send :math:`s = C` (number of classes), ALDR-KL
:math:`s = 1`. ``outputs/benchmarks/distributed.json`` (``benchmarks/bench_distributed.py``)
measures it against plain DDP.

When ``torch.distributed`` is not initialized (or the world has one rank) :func:`sync_rows`
returns at once: no communication, no change of behaviour. Every rank must call the update
the same number of times (it is a collective); inside :func:`state_sync` ``(False)`` the
exchange is skipped, e.g. to evaluate in training mode on one rank only.

Duplicates across ranks (a ``DistributedSampler`` with ``drop_last=False`` pads the last
batch with repeated examples) are resolved deterministically: the row from the highest rank
wins, as if the ranks' batches had been processed one after the other.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["STATS", "ExchangeStats", "all_gather_rows", "state_sync", "sync_rows", "world_size"]

_ENABLED = True


@dataclass
class ExchangeStats:
    """Running totals of :func:`sync_rows` on this rank (reset with ``STATS.reset()``)."""

    calls: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def reset(self) -> None:
        """Set every counter (calls, bytes sent, bytes received) back to 0; returns ``None``."""
        self.calls = self.bytes_sent = self.bytes_received = 0


STATS = ExchangeStats()


def world_size(group=None) -> int:
    """Ranks in ``group`` (the default group if ``None``); 1 without an initialized process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


@contextmanager
def state_sync(enabled: bool = True):
    """Enable or disable the exchange of :func:`sync_rows` inside a ``with`` block."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = previous


def all_gather_rows(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Concatenate, in rank order, every rank's ``(B_r, ...)`` tensor; the ``B_r`` may differ.

    The sizes are gathered first, every tensor is padded to the largest and trimmed after.
    Without an initialized process group the tensor itself is returned.
    """
    world = world_size(group)
    if world == 1:
        return tensor
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s) for s in sizes]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded, group=group)
    STATS.bytes_sent += 8 + padded.numel() * padded.element_size()
    STATS.bytes_received += world * (8 + padded.numel() * padded.element_size())
    return torch.cat([part[:n] for part, n in zip(gathered, sizes)])


def _last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """Positions of the last occurrence of every distinct value of ``index``."""
    unique, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(index.numel(), device=index.device)
    last = torch.full((unique.numel(),), -1, dtype=positions.dtype, device=index.device)
    return last.scatter_reduce_(0, inverse, positions, reduce="amax")


@torch.no_grad()
def sync_rows(state: torch.Tensor, index: torch.Tensor, group=None) -> None:
    """Give every rank the rows ``state[index]`` that every rank has just updated.

    Args:
        state: ``(N, *row)`` table, identical on all ranks before this step's updates.
        index: ``(B_r,)`` integer rows this rank updated (sizes may differ between ranks).
        group: the process group (default: the world).

    No-op without an initialized process group, with one rank, or inside ``state_sync(False)``.
    """
    if not _ENABLED or world_size(group) == 1:
        return
    if index.ndim != 1 or index.is_floating_point():
        raise ValueError(f"index must be a 1-D integer tensor, got dtype {index.dtype} and shape {tuple(index.shape)}")
    index = index.to(device=state.device, dtype=torch.int64)
    rows = state[index].reshape(index.shape[0], -1).contiguous()
    payload = torch.cat([index.view(torch.uint8).reshape(-1, 8), rows.view(torch.uint8)], dim=1)
    gathered = all_gather_rows(payload, group)
    all_index = gathered[:, :8].contiguous().view(torch.int64).reshape(-1)
    all_rows = gathered[:, 8:].contiguous().view(state.dtype).reshape(-1, *state.shape[1:])
    if torch.unique(all_index).numel() != all_index.numel():
        keep = _last_occurrence(all_index)
        all_index, all_rows = all_index[keep], all_rows[keep]
    state[all_index] = all_rows
    STATS.calls += 1
