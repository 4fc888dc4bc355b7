"""Prepared GPU check (``make gpu-check``): one script, at most 8 minutes on one GPU.

Stages, each with its own time budget inside a global deadline (a stage that runs out is
stopped and reported, the next one still runs):

1. ``tests``: the unit tests (``tests/``, notebooks excluded) with CUDA available; the
   tests taking the ``device`` fixture (``tests/test_devices.py``: every family's methods,
   values and gradients vs the CPU) then run on ``cuda`` too.
2. ``cross_entropy``: the loss of a linear classifier, forward + backward, N = 8192 tokens,
   d = 2048, V ∈ {32k, 128k, 256k}, bfloat16 and float32, for naive
   ``F.cross_entropy(h @ W.T, y)``, :func:`regkit.losses.linear_cross_entropy`, torch's
   chunked ``F.linear_cross_entropy(..., options=torch.nn.LinearCrossEntropyOptions())``
   (when this torch has it), Apple's ``cut-cross-entropy`` (``cut_cross_entropy``,
   arXiv:2411.09009) and liger-kernel's fused linear cross-entropy (when importable).
   Peak extra memory (``torch.cuda.max_memory_allocated`` minus the allocated inputs) and
   the median time of 3 steps, each as a ratio to naive, and the loss's relative
   difference from naive; into ``outputs/benchmarks/cross_entropy_gpu.json``.
3. ``sinkhorn``: :func:`regkit.ot.sinkhorn` (log domain, float32, ε = 0.05, 20 iterations)
   on n = 2k … 16k uniform points, CUDA vs CPU, time per iteration.
4. ``notebooks``: ``elr`` and ``cut_cross_entropy`` in the quick profile with
   ``device="cuda"`` (``python -m regkit.workbook run SLUG --profile quick -p device=cuda
   --dest scratch/gpu``).

The summary goes to ``outputs/benchmarks/gpu_check.json``; the exit status is 0 only when
every stage passed. Without CUDA it prints why and exits with status 2 before running
anything. ``--only STAGE`` (repeatable) runs a subset.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from common import OUT, ROOT

from regkit.losses import linear_cross_entropy
from regkit.ot import sinkhorn, sqeuclidean
from regkit.workbook.testbeds.linear_ce import make_problem

TOTAL_SECONDS = 450  # 7.5 minutes of stages, the rest for the interpreter and CUDA start-up
BUDGETS = {"tests": 170, "cross_entropy": 140, "sinkhorn": 35, "notebooks": 105}
N, DIM, VOCABS, DTYPES, REPEATS = 8192, 2048, (32768, 131072, 262144), ("bfloat16", "float32"), 3
SINKHORN_SIZES, SINKHORN_ITERS, SINKHORN_EPS = (2048, 4096, 8192, 16384), 20, 0.05
NOTEBOOKS = ("elr", "cut_cross_entropy")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(command: list[str], timeout: float, env: dict | None = None) -> dict:
    start = time.perf_counter()
    try:
        child = subprocess.run(
            command,
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=max(timeout, 1),
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return {
            "ok": False,
            "error": f"timed out after {timeout:.0f} s",
            "seconds": time.perf_counter() - start,
            "tail": _tail(output),
        }
    return {
        "ok": child.returncode == 0,
        "returncode": child.returncode,
        "seconds": time.perf_counter() - start,
        "tail": _tail(child.stdout + "\n" + child.stderr),
    }


def stage_tests(deadline: float) -> dict:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests",
        "-q",
        "-p",
        "no:cacheprovider",
        "--ignore=tests/workbook/test_notebooks.py",
    ]
    return _run(command, deadline - time.perf_counter(), env={"REGKIT_PROFILE": "quick"})


# ---------------------------------------------------------------- cross-entropy
def _variants() -> dict:
    variants = {
        "naive": lambda h, w, y: F.cross_entropy(h @ w.T, y),
        "regkit": linear_cross_entropy,
    }
    if hasattr(F, "linear_cross_entropy") and hasattr(torch.nn, "LinearCrossEntropyOptions"):
        options = torch.nn.LinearCrossEntropyOptions()
        variants["torch_chunked"] = lambda h, w, y: F.linear_cross_entropy(h, w, y, options=options)
    try:
        from cut_cross_entropy import linear_cross_entropy as cce

        variants["cut_cross_entropy"] = lambda h, w, y: cce(h, w, y)
    except ImportError:
        pass
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss()
        variants["liger_kernel"] = lambda h, w, y: liger(w, h, y)
    except ImportError:
        pass
    return variants


def _measure(loss_fn, vocab: int, dtype: str) -> dict:
    hidden, weight, labels = make_problem(N, vocab, DIM, dtype=getattr(torch, dtype), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()

    def step():
        hidden.grad = weight.grad = None
        loss = loss_fn(hidden, weight, labels)
        loss.backward()
        torch.cuda.synchronize()
        return float(loss.detach())

    try:
        start = time.perf_counter()
        loss = step()
        first = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() - before
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return {
            "loss": loss,
            "peak_extra_bytes": peak,
            "first_seconds": first,
            "median_seconds": statistics.median(times),
        }
    # out of memory, a dtype a third-party kernel does not support, a Triton compile error, ...: recorded
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def stage_cross_entropy(deadline: float) -> dict:
    variants = _variants()
    rows = []
    for dtype in DTYPES:
        for vocab in VOCABS:
            for name, loss_fn in variants.items():
                row = {"variant": name, "dtype": dtype, "n": N, "d": DIM, "vocab": vocab}
                if time.perf_counter() > deadline:
                    row["error"] = "skipped: stage time budget spent"
                else:
                    row.update(_measure(loss_fn, vocab, dtype))
                    gc.collect()  # the inputs of _measure are gone: give their memory back to the next
                    torch.cuda.empty_cache()
                rows.append(row)
                print(f"  {row}", flush=True)
    naive = {(r["dtype"], r["vocab"]): r for r in rows if r["variant"] == "naive"}
    for row in rows:
        ref = naive[row["dtype"], row["vocab"]]
        if "error" in row or "error" in ref or row["variant"] == "naive":
            continue
        row["memory_ratio_vs_naive"] = row["peak_extra_bytes"] / ref["peak_extra_bytes"]
        row["time_ratio_vs_naive"] = row["median_seconds"] / ref["median_seconds"]
        row["loss_relative_difference_vs_naive"] = abs(row["loss"] - ref["loss"]) / abs(ref["loss"])
    measured = [r for r in rows if "error" not in r]
    ours_ok = all("error" not in r for r in rows if r["variant"] == "regkit")
    close = all(
        r.get("loss_relative_difference_vs_naive", 0) < (2e-2 if r["dtype"] == "bfloat16" else 1e-4)
        for r in measured
        if r["variant"] == "regkit"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "cross_entropy_gpu.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "cross_entropy_gpu",
                "device": torch.cuda.get_device_name(),
                "torch": torch.__version__,
                "variants": list(variants),
                "rows": rows,
                "note": "peak_extra_bytes = max_memory_allocated during one forward + backward minus the inputs; "
                "ratios are variant / naive at the same dtype and V",
            },
            indent=2,
        )
        + "\n"
    )
    return {
        "ok": ours_ok and close,
        "variants": list(variants),
        "measured": len(measured),
        "rows": len(rows),
        "output": os.path.relpath(path, ROOT),
    }


# ---------------------------------------------------------------- sinkhorn
def _sinkhorn_seconds_per_iteration(n: int, device: str) -> float:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 2, generator=generator), torch.rand(n, 2, generator=generator)
    cost = sqeuclidean(x.to(device), y.to(device))
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = sinkhorn(None, None, cost, SINKHORN_EPS, max_iter=SINKHORN_ITERS, tol=0.0)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / result.n_iter


def stage_sinkhorn(deadline: float) -> dict:
    rows = []
    _sinkhorn_seconds_per_iteration(512, "cuda")  # CUDA context and kernels
    for n in SINKHORN_SIZES:
        row = {"n": n}
        for device in ("cuda", "cpu"):
            if time.perf_counter() > deadline:
                row[f"{device}_error"] = "skipped: stage time budget spent"
                continue
            row[f"{device}_seconds_per_iteration"] = _sinkhorn_seconds_per_iteration(n, device)
        if "cuda_seconds_per_iteration" in row and "cpu_seconds_per_iteration" in row:
            row["speedup_cuda_vs_cpu"] = row["cpu_seconds_per_iteration"] / row["cuda_seconds_per_iteration"]
        rows.append(row)
        print(f"  {row}", flush=True)
        torch.cuda.empty_cache()
    return {
        "ok": all("cuda_seconds_per_iteration" in r for r in rows),
        "rows": rows,
        "settings": {
            "eps": SINKHORN_EPS,
            "iterations": SINKHORN_ITERS,
            "dtype": "float32",
            "cpu_threads": torch.get_num_threads(),
        },
    }


def stage_notebooks(deadline: float) -> dict:
    command = [
        sys.executable,
        "-m",
        "regkit.workbook",
        "run",
        *NOTEBOOKS,
        "--profile",
        "quick",
        "-p",
        "device=cuda",
        "--dest",
        "scratch/gpu",
    ]
    return {**_run(command, deadline - time.perf_counter()), "notebooks": list(NOTEBOOKS)}


STAGES = {
    "tests": stage_tests,
    "cross_entropy": stage_cross_entropy,
    "sinkhorn": stage_sinkhorn,
    "notebooks": stage_notebooks,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=list(STAGES), help="run only this stage (repeatable)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA (a CPU-only build)"
        print(
            f"gpu-check: CUDA is not available (torch {torch.__version__}, built with {built}); this check needs "
            "an NVIDIA GPU and a CUDA build of torch. Nothing was run.",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    end = start + TOTAL_SECONDS
    summary = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "stages": {}}
    for name in args.only or list(STAGES):
        stage_start = time.perf_counter()
        deadline = min(end, stage_start + BUDGETS[name])
        print(f"== {name} (budget {deadline - stage_start:.0f} s)", flush=True)
        try:
            result = STAGES[name](deadline)
        except Exception as exc:  # noqa: BLE001 -- a broken stage is reported, the next still runs
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = time.perf_counter() - stage_start
        summary["stages"][name] = result
        print(f"== {name}: {'ok' if result['ok'] else 'FAILED'} in {result['seconds']:.0f} s", flush=True)
        if not result["ok"] and "tail" in result:
            print(result["tail"], flush=True)
    summary["seconds"] = time.perf_counter() - start
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = [name for name, result in summary["stages"].items() if not result["ok"]]
    print(
        f"gpu-check: {'FAILED: ' + ', '.join(failed) if failed else 'all stages passed'} "
        f"in {summary['seconds']:.0f} s; summary in outputs/benchmarks/gpu_check.json"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
