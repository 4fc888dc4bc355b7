"""regkit under torch.distributed: gloo on the CPU, 2 and 3 processes spawned by the test.

- DDP + DistributedSampler(shuffle=True), a few epochs of a tiny float64 MLP with ELR,
  PS-KD and ALDR-KL: every rank's parameters and per-example state equal those of
  single-process training over the same global batches (the ranks' batches concatenated),
  to 1e-10.
- regkit.distributed.sync_rows with batch sizes that differ between ranks and with an
  example on two ranks.
- vocab_parallel_linear_cross_entropy with uneven shards (also in a permuted layout given by
  vocab_start), ignored labels, z-loss, bias and the three reductions: loss and gradients
  equal the single-process linear_cross_entropy and naive F.cross_entropy.

Each world size is one spawn (module-scoped fixture) bounded by TIMEOUT seconds; the
workers save their results and the assertions run here.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from regkit.distributed import STATS, all_gather_rows, sync_rows, world_size
from regkit.losses import ALDRKLLoss, ELRLoss, linear_cross_entropy, vocab_parallel_linear_cross_entropy
from regkit.regularizers import PSKD

TIMEOUT = 120.0  # per world size; the file takes ~40 s on 2 idle cores
N, DIM, HIDDEN, CLASSES = 60, 5, 8, 4
BATCH, EPOCHS, SEED = 4, 3, 7
METHODS = ("elr", "pskd", "aldr")
VOCAB, TOKENS, D_MODEL, IGNORE = 11, 13, 6, -100
SHARDS = {2: [7, 4], 3: [5, 4, 2]}
# (reduction, z_loss, bias, filter_eps, layout): "order" = SHARDS in rank order, offsets derived;
# "reversed" = SHARDS in reverse rank order through explicit vocab_start; "empty" = rank 0
# holds no rows, in rank order
CASES = [
    ("mean", 0.0, False, None, "order"),
    ("sum", 1e-2, True, "auto", "order"),
    ("none", 1e-2, True, None, "reversed"),
    ("mean", 0.0, True, "auto", "reversed"),
    ("none", 1e-2, True, None, "empty"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, DIM, generator=generator, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (N,), generator=generator)
    return x, y


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES)).double()


def _global_batches(world: int, epoch: int) -> list[list[torch.Tensor]]:
    """Per step, every rank's batch of indices, as DistributedSampler(shuffle=True) deals them."""
    per_rank = []
    for rank in range(world):
        sampler = DistributedSampler(range(N), num_replicas=world, rank=rank, shuffle=True, seed=SEED)
        sampler.set_epoch(epoch)
        per_rank.append(torch.tensor(list(sampler)).split(BATCH))
    return [list(step) for step in zip(*per_rank)]


def _train(method: str, world: int, rank: int | None) -> dict:
    """``rank`` None: one process over the global batches; else this rank's part under DDP."""
    x, y = _data()
    model = _model()
    net = model if rank is None else DistributedDataParallel(model)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.5)
    if method == "elr":
        criterion = ELRLoss(N, CLASSES, lam=3.0, beta=0.7).double()
    elif method == "aldr":
        criterion = ALDRKLLoss(N, CLASSES, lam0=1.0, alpha=2.0).double()
    else:
        criterion = PSKD(N, CLASSES, EPOCHS, alpha_T=0.8).double()
    for epoch in range(EPOCHS):
        for step in _global_batches(world, epoch):
            index = torch.cat(step) if rank is None else step[rank]
            logits = net(x[index])
            loss = criterion(logits, y[index], index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if method == "pskd":
            criterion.end_epoch()
    state = {
        "elr": lambda: criterion.targets,
        "aldr": lambda: criterion.lam,
        "pskd": lambda: torch.stack([criterion.previous, criterion.current]),
    }[method]()
    return {"params": [p.detach().clone() for p in model.parameters()], "state": state.detach().clone()}


def _vocab_problem(bias: bool):
    generator = torch.Generator().manual_seed(3)
    hidden = torch.randn(TOKENS, D_MODEL, generator=generator, dtype=torch.float64)
    weight = torch.randn(VOCAB, D_MODEL, generator=generator, dtype=torch.float64)
    b = torch.randn(VOCAB, generator=generator, dtype=torch.float64) if bias else None
    labels = torch.randint(0, VOCAB, (TOKENS,), generator=generator)
    labels[[2, 7]] = IGNORE
    grad_out = torch.randn(TOKENS, generator=generator, dtype=torch.float64)
    return hidden, weight, b, labels, grad_out


def _layout(world: int, order: str) -> list[tuple[int, int]]:
    """(vocab_start, rows) of every rank."""
    sizes = SHARDS[world]
    if order == "empty":
        sizes = [0, *sizes[:-2], sizes[-2] + sizes[-1]]
    ranks = reversed(range(world)) if order == "reversed" else range(world)
    starts, offset = {}, 0
    for r in ranks:
        starts[r] = offset
        offset += sizes[r]
    return [(starts[r], sizes[r]) for r in range(world)]


def _backward(loss, reduction, grad_out):
    (loss * grad_out).sum().backward() if reduction == "none" else loss.backward()


def _vocab_parallel(world: int, rank: int) -> list[dict]:
    results = []
    for reduction, z_loss, bias, filter_eps, order in CASES:
        hidden, weight, b, labels, grad_out = _vocab_problem(bias)
        start, rows = _layout(world, order)[rank]
        hidden.requires_grad_()
        shard = weight[start : start + rows].clone().requires_grad_()
        b_shard = None if b is None else b[start : start + rows].clone().requires_grad_()
        loss = vocab_parallel_linear_cross_entropy(
            hidden,
            shard,
            labels,
            bias=b_shard,
            vocab_start=start if order == "reversed" else None,
            ignore_index=IGNORE,
            reduction=reduction,
            z_loss=z_loss,
            filter_eps=filter_eps,
            chunk_size=3,
            token_chunk_size=4,
        )
        _backward(loss, reduction, grad_out)
        results.append(
            {
                "loss": loss.detach(),
                "hidden": hidden.grad,
                "weight": shard.grad,
                "bias": None if b_shard is None else b_shard.grad,
                "start": start,
                "rows": rows,
            }
        )
    start, rows = _layout(world, "order")[rank]
    try:  # every rank claims its non-empty shard starts at row 0: the shards overlap
        vocab_parallel_linear_cross_entropy(
            hidden, weight[start : start + rows], labels, vocab_start=0, ignore_index=IGNORE
        )
        error = None
    except ValueError as exc:
        error = str(exc)
    results.append({"error": error})
    return results


def _sync_uneven(world: int, rank: int) -> torch.Tensor:
    """Rank r updates r + 1 rows (3 on the last rank, which shares row 0 with rank 0)."""
    table = torch.zeros(10, 2, dtype=torch.float64)
    index = torch.tensor([0, 5, 9]) if rank == world - 1 else torch.arange(rank + 1) + 2 * rank
    table[index] = rank + 1.0 + torch.arange(2, dtype=torch.float64)
    sync_rows(table, index)
    return table


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=TIMEOUT)
    )
    try:
        results = {method: _train(method, world, rank) for method in METHODS}
        results["sync_calls"] = STATS.calls
        results["uneven"] = _sync_uneven(world, rank)
        results["gathered"] = all_gather_rows(torch.full((rank + 1, 2), float(rank)))
        results["vocab"] = _vocab_parallel(world, rank)
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module", params=[2, 3], ids=lambda w: f"world{w}")
def distributed(request, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp(f"world{world}")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    context = mp.start_processes(
        _worker, args=(world, _free_port(), str(out)), nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{world} gloo processes did not finish within {TIMEOUT} s")
    return world, [torch.load(out / f"rank{r}.pt") for r in range(world)]


@pytest.mark.parametrize("method", METHODS)
def test_ddp_state_matches_single_process(distributed, method):
    world, ranks = distributed
    reference = _train(method, world, None)
    assert reference["state"].abs().sum() > 0
    for result in ranks:
        for ours, expected in zip(result[method]["params"], reference["params"]):
            torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)
        torch.testing.assert_close(result[method]["state"], reference["state"], rtol=0, atol=1e-10)


def test_rows_updated_by_other_ranks_arrive(distributed):
    """Rank 0 holds the last epoch's updates of the examples that only other ranks saw."""
    world, ranks = distributed
    reference = _train("elr", world, None)["state"]
    # rows this rank never touched in the last epoch were updated by another rank
    last_epoch = _global_batches(world, EPOCHS - 1)
    mine = torch.cat([step[0] for step in last_epoch])
    others = torch.tensor(sorted(set(range(N)) - set(mine.tolist())))
    assert reference[others].abs().sum() > 0
    torch.testing.assert_close(ranks[0]["elr"]["state"][others], reference[others], rtol=0, atol=1e-10)
    assert ranks[0]["sync_calls"] > 0


def test_sync_rows_uneven_batches_and_duplicates(distributed):
    world, ranks = distributed
    expected = torch.zeros(10, 2, dtype=torch.float64)
    for rank in range(world):  # in rank order: the last rank wins the shared row 0
        index = torch.tensor([0, 5, 9]) if rank == world - 1 else torch.arange(rank + 1) + 2 * rank
        expected[index] = rank + 1.0 + torch.arange(2, dtype=torch.float64)
    gathered = torch.cat([torch.full((r + 1, 2), float(r)) for r in range(world)])
    for result in ranks:
        torch.testing.assert_close(result["uneven"], expected, rtol=0, atol=0)
        torch.testing.assert_close(result["gathered"], gathered, rtol=0, atol=0)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_vocab_parallel_matches_single_process(distributed, case):
    _, ranks = distributed
    reduction, z_loss, bias, _, _ = CASES[case]
    hidden, weight, b, targets, grad_out = _vocab_problem(bias)
    hidden.requires_grad_()
    weight.requires_grad_()
    if b is not None:
        b.requires_grad_()
    loss = linear_cross_entropy(
        hidden, weight, targets, bias=b, ignore_index=IGNORE, reduction=reduction, z_loss=z_loss, filter_eps=None
    )
    _backward(loss, reduction, grad_out)
    logits = hidden.detach() @ weight.detach().T + (0 if b is None else b.detach())
    naive = F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="none")
    naive = naive + z_loss * torch.where(targets != IGNORE, logits.logsumexp(1).square(), 0.0)
    naive = {"mean": naive.sum() / (targets != IGNORE).sum(), "sum": naive.sum(), "none": naive}[reduction]
    torch.testing.assert_close(loss.detach(), naive, rtol=0, atol=1e-10)
    for result in ranks:
        ours = result["vocab"][case]
        start, rows = ours["start"], ours["rows"]
        torch.testing.assert_close(ours["loss"], loss.detach(), rtol=0, atol=1e-10)
        torch.testing.assert_close(ours["hidden"], hidden.grad, rtol=0, atol=1e-10)
        torch.testing.assert_close(ours["weight"], weight.grad[start : start + rows], rtol=0, atol=1e-10)
        if b is not None:
            torch.testing.assert_close(ours["bias"], b.grad[start : start + rows], rtol=0, atol=1e-10)
    assert sum(r["vocab"][case]["rows"] for r in ranks) == VOCAB
    assert len({r["vocab"][case]["rows"] for r in ranks}) > 1  # uneven


def test_vocab_parallel_rejects_overlapping_shards(distributed):
    _, ranks = distributed
    for result in ranks:
        assert "vocab_start" in result["vocab"][-1]["error"]


def test_no_process_group_no_exchange(monkeypatch):
    """Without torch.distributed initialized nothing is communicated and nothing changes."""
    assert not dist.is_initialized() and world_size() == 1

    def forbidden(*args, **kwargs):
        raise AssertionError("a collective was called without a process group")

    monkeypatch.setattr(dist, "all_gather", forbidden)
    monkeypatch.setattr(dist, "all_reduce", forbidden)
    calls = STATS.calls
    x, y = _data()
    index = torch.arange(6)
    criterion = ELRLoss(N, CLASSES).double()
    criterion(x[index, :CLASSES], y[index], index)
    expected = F.softmax(x[index, :CLASSES], 1).clamp(1e-4, 1 - 1e-4)
    expected = 0.3 * expected / expected.sum(1, keepdim=True)
    torch.testing.assert_close(criterion.targets[index], expected)
    table = torch.zeros(4, 2)
    sync_rows(table, torch.tensor([1]))
    assert table.abs().sum() == 0 and STATS.calls == calls
    hidden, weight, b, targets, _ = _vocab_problem(True)
    torch.testing.assert_close(
        vocab_parallel_linear_cross_entropy(hidden, weight, targets, bias=b, ignore_index=IGNORE),
        linear_cross_entropy(hidden, weight, targets, bias=b, ignore_index=IGNORE),
        rtol=0,
        atol=0,
    )
    with pytest.raises(ValueError, match="vocab_start"):
        vocab_parallel_linear_cross_entropy(hidden, weight, targets, vocab_start=3, ignore_index=IGNORE)
