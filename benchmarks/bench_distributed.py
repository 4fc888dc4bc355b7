"""Cost of regkit under torch.distributed: the per-example state exchange and the
vocabulary-parallel linear cross-entropy (2 gloo processes on the CPU, one thread each).

1. **State exchange** (:func:`regkit.distributed.sync_rows`): DDP training steps of a small
   MLP (32 → 256 → 256 → C, float32, local batch 256, N = 8192 examples) with ELR, PS-KD and
   ALDR-KL, the exchange on vs off (``state_sync(False)``, i.e. plain DDP with the same
   loss), and plain DDP with ``F.cross_entropy``. Blocks of steps alternate between the modes
   (the machine is shared); reported: the fastest block's wall and CPU time per step, their
   ratios, the wall time spent inside ``sync_rows`` per step (waits for the slower rank
   included) and of ``sync_rows`` alone, back to back, and the bytes each rank sends
   and receives per step (``regkit.distributed.STATS``) next to DDP's own gradient all-reduce
   (the parameter bytes).
2. **Vocabulary-parallel cross-entropy**: forward + backward of
   ``vocab_parallel_linear_cross_entropy`` with the classifier split over 2 ranks vs
   ``linear_cross_entropy`` in one process (N = 1024, d = 128, V = 16384, float32, default
   tiles): the fastest of 5 wall times, CPU time, and peak extra resident memory per process
  (``VmHWM`` reset before the step, minus
   ``VmRSS``; the inputs are allocated before), as ratios.

Run: ``python benchmarks/bench_distributed.py`` (or ``make bench``), under 2 minutes; writes
outputs/benchmarks/distributed.json.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from common import write
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import regkit.losses.elr
import regkit.losses.ldr
import regkit.regularizers.self_distillation
from regkit.distributed import STATS, state_sync, sync_rows
from regkit.losses import (
    ALDRKLLoss,
    ELRLoss,
    linear_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)
from regkit.regularizers import PSKD, soft_cross_entropy
from regkit.workbook.measure import reset_peak_rss, status_kib

WORLD = 2
N, DIM, WIDTH, CLASSES, BATCH = 8192, 32, 256, 10, 256
BLOCKS, STEPS = 12, 3  # per mode: BLOCKS alternating blocks of STEPS timed steps; the fastest block counts
TOKENS, D_MODEL, VOCAB, REPEATS = 1024, 128, 16384, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EXCHANGE_SECONDS = [0.0]


def _timed_sync_rows(state, index, group=None):
    start = time.perf_counter()
    sync_rows(state, index, group)
    EXCHANGE_SECONDS[0] += time.perf_counter() - start


def _criterion(method: str):
    if method == "elr":
        criterion = ELRLoss(N, CLASSES)
        return lambda logits, y, index, epoch: criterion(logits, y, index)
    if method == "aldr":
        criterion = ALDRKLLoss(N, CLASSES)
        return lambda logits, y, index, epoch: criterion(logits, y, index)
    if method == "pskd":
        criterion = PSKD(N, CLASSES, epochs=2)

        def loss(logits, y, index, epoch):
            value = soft_cross_entropy(logits, criterion.targets(y, index, 1))
            criterion.record(logits, index)
            return value

        return loss
    return lambda logits, y, index, epoch: F.cross_entropy(logits, y)


def _exchange(rank: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, DIM, generator=generator)
    y = torch.randint(0, CLASSES, (N,), generator=generator)
    order = torch.randperm(N, generator=generator)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(DIM, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, CLASSES)
    )
    net = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    cursor = 0

    def run_steps(loss_fn, count):
        nonlocal cursor
        for _ in range(count):
            start = (cursor * WORLD + rank) * BATCH % N
            index = order[start : start + BATCH]
            cursor += 1
            loss = loss_fn(net(x[index]), y[index], index, 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def timed(loss_fn, count):
        dist.barrier()
        wall, cpu = time.perf_counter(), time.process_time()
        run_steps(loss_fn, count)
        dist.barrier()
        return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count

    for module in (regkit.losses.elr, regkit.losses.ldr, regkit.regularizers.self_distillation):
        module.sync_rows = _timed_sync_rows  # time spent in the exchange (the losses call it by this name)
    results = {"param_bytes": param_bytes}
    plain = _criterion("ce")
    run_steps(plain, 2)
    for method in ("elr", "pskd", "aldr"):
        loss_fn = _criterion(method)
        run_steps(loss_fn, 2)
        modes = {"exchange": [], "no_exchange": [], "plain_ddp_cross_entropy": []}
        STATS.reset()
        EXCHANGE_SECONDS[0] = 0.0
        for _ in range(BLOCKS):
            modes["exchange"].append(timed(loss_fn, STEPS))
            with state_sync(False):
                modes["no_exchange"].append(timed(loss_fn, STEPS))
            modes["plain_ddp_cross_entropy"].append(timed(plain, STEPS))
        steps = BLOCKS * STEPS
        row = {"elr": CLASSES, "pskd": CLASSES, "aldr": 1}[method]
        results[method] = {
            **{f"step_seconds_{mode}": min(w for w, _ in samples) for mode, samples in modes.items()},
            **{f"step_cpu_seconds_{mode}": min(c for _, c in samples) for mode, samples in modes.items()},
            "exchange_seconds_per_step": EXCHANGE_SECONDS[0] / steps,
            "exchange_calls_per_step": STATS.calls / steps,
            "bytes_sent_per_step": STATS.bytes_sent / steps,
            "bytes_received_per_step": STATS.bytes_received / steps,
        }
        results[method]["exchange_only_seconds"] = _exchange_only(row)
    return results


def _exchange_only(row: int, calls: int = 3) -> float:
    """Wall time of one sync_rows of BATCH rows of ``row`` floats, nothing else running (best of BLOCKS)."""
    table = torch.zeros(N, row)
    index = torch.arange(BATCH) + dist.get_rank() * BATCH
    samples = []
    for _ in range(BLOCKS):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(calls):
            sync_rows(table, index)
        samples.append((time.perf_counter() - start) / calls)
    return min(samples)


def _vocab_problem(rows: slice):
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(TOKENS, D_MODEL, generator=generator)
    weight = torch.randn(VOCAB, D_MODEL, generator=generator).mul_(D_MODEL**-0.5)
    labels = torch.randint(0, VOCAB, (TOKENS,), generator=generator)
    return hidden.requires_grad_(), weight[rows].clone().requires_grad_(), labels


def _vocab(rank: int, world: int) -> dict:
    """One forward + backward: peak extra memory of the first, median time of REPEATS more."""
    rows = slice(rank * VOCAB // world, (rank + 1) * VOCAB // world)
    hidden, weight, labels = _vocab_problem(rows)
    loss_fn = vocab_parallel_linear_cross_entropy if world > 1 else linear_cross_entropy

    def step():
        hidden.grad = weight.grad = None
        loss_fn(hidden, weight, labels).backward()
        if world > 1:
            dist.barrier()

    small_h, small_w, small_t = hidden[:64].detach(), weight[:512].detach().requires_grad_(), labels[:64] % 512
    linear_cross_entropy(small_h, small_w, small_t).backward()  # warm the kernels, not the peak
    if world > 1:
        dist.barrier()
    reset = reset_peak_rss()
    before = status_kib("VmRSS") * 1024
    step()
    peak = status_kib("VmHWM") * 1024 - before if reset else None
    times, cpu = [], []
    for _ in range(REPEATS):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "peak_extra_bytes": peak,
        "min_seconds": min(times),
        "median_seconds": statistics.median(times),
        "min_cpu_seconds": min(cpu),
        "vocab_rows": rows.stop - rows.start,
    }


def _worker(rank: int, world: int, port: int, task: str, out: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=120)
        )
    try:
        result = _exchange(rank) if task == "exchange" else _vocab(rank, world)
        Path(out, f"{task}{world}_{rank}.json").write_text(json.dumps(result))
    finally:
        if world > 1:
            dist.destroy_process_group()


def _spawn(task: str, world: int, out: str) -> list[dict]:
    mp.start_processes(_worker, args=(world, _free_port(), task, out), nprocs=world, start_method="spawn")
    return [json.loads(Path(out, f"{task}{world}_{r}.json").read_text()) for r in range(world)]


def main():
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        exchange = _spawn("exchange", WORLD, out)
        vocab_ranks = _spawn("vocab", WORLD, out)
        (vocab_single,) = _spawn("vocab", 1, out)

    state = {}
    for method in ("elr", "pskd", "aldr"):
        rank0 = exchange[0][method]
        plain = rank0["step_seconds_plain_ddp_cross_entropy"]
        state[method] = {
            **rank0,
            "exchange_time_fraction_of_plain_ddp_step": rank0["exchange_seconds_per_step"] / plain,
            "exchange_only_fraction_of_plain_ddp_step": rank0["exchange_only_seconds"] / plain,
            "time_ratio_exchange_vs_no_exchange": rank0["step_seconds_exchange"] / rank0["step_seconds_no_exchange"],
            "cpu_ratio_exchange_vs_no_exchange": rank0["step_cpu_seconds_exchange"]
            / rank0["step_cpu_seconds_no_exchange"],
            "time_ratio_exchange_vs_plain_ddp_cross_entropy": rank0["step_seconds_exchange"] / plain,
            "bytes_received_vs_ddp_gradient_bytes": rank0["bytes_received_per_step"] / exchange[0]["param_bytes"],
        }
        print(
            f"{method:>5}: step {rank0['step_seconds_exchange'] * 1e3:.2f} ms with exchange, "
            f"{rank0['step_seconds_no_exchange'] * 1e3:.2f} ms without "
            f"({state[method]['time_ratio_exchange_vs_no_exchange']:.3f}x wall, "
            f"{state[method]['cpu_ratio_exchange_vs_no_exchange']:.3f}x CPU), "
            f"{plain * 1e3:.2f} ms plain DDP + CE; exchange {rank0['exchange_seconds_per_step'] * 1e3:.2f} ms/step "
            f"({state[method]['exchange_time_fraction_of_plain_ddp_step']:.3f}x a plain step; "
            f"{rank0['exchange_only_seconds'] * 1e3:.2f} ms alone), "
            f"{rank0['bytes_received_per_step']:.0f} B received/step "
            f"({state[method]['bytes_received_vs_ddp_gradient_bytes']:.4f}x the gradient bytes)"
        )
    vocab = {
        "ranks": vocab_ranks,
        "single_process": vocab_single,
        "time_ratio_2_ranks_vs_1": max(r["min_seconds"] for r in vocab_ranks) / vocab_single["min_seconds"],
        "cpu_time_ratio_per_rank_vs_1": [r["min_cpu_seconds"] / vocab_single["min_cpu_seconds"] for r in vocab_ranks],
        "peak_memory_per_rank_fraction": [
            None
            if r["peak_extra_bytes"] is None or not vocab_single["peak_extra_bytes"]
            else r["peak_extra_bytes"] / vocab_single["peak_extra_bytes"]
            for r in vocab_ranks
        ],
    }
    print(
        f"vocab-parallel, 2 ranks vs 1 process: time {vocab['time_ratio_2_ranks_vs_1']:.3f}x, CPU time per rank "
        f"{vocab['cpu_time_ratio_per_rank_vs_1']}, peak memory per rank "
        f"{vocab['peak_memory_per_rank_fraction']} of the one-process peak"
    )
    path = write(
        "distributed",
        {
            "world_size": WORLD,
            "backend": "gloo",
            "threads_per_process": 1,
            "state_exchange": {
                "n_examples": N,
                "classes": CLASSES,
                "local_batch": BATCH,
                "mlp": [DIM, WIDTH, WIDTH, CLASSES],
                "dtype": "float32",
                "param_bytes": exchange[0]["param_bytes"],
                "methods": state,
            },
            "vocab_parallel": {"tokens": TOKENS, "d": D_MODEL, "vocab": VOCAB, "dtype": "float32", **vocab},
            "seconds": time.perf_counter() - started,
        },
    )
    print(f"wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
