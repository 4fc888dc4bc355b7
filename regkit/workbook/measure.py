"""Measurement helpers: peak memory and time of one computation in a fresh process, and robust
in-process timing (:func:`median_time`), used by the notebooks and ``benchmarks/``.

Peak memory is only meaningful per process: allocators keep freed pages, and the peak
of an earlier computation hides a later one. :func:`measure_in_fresh_process` therefore starts
a new interpreter, which builds the inputs with ``setup(**kwargs)`` (a ``"module:function"``
returning a zero-argument ``step``), records the baseline, runs ``step()`` once and reads
the peak:

- CPU: the peak resident set (``VmHWM``) after the step minus the resident set before it;
  the peak is reset just before the step (``/proc/self/clear_refs``), so transient memory
  of the imports and the setup does not count (where that is not possible, ``ru_maxrss``);
- CUDA: ``torch.cuda.max_memory_allocated()`` after minus ``memory_allocated()`` before.

The step is then repeated
``repeats`` times for a median wall time (the first, measured, run doubles as warm-up).
"""

from __future__ import annotations

import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

__all__ = ["measure_in_fresh_process", "median_time", "reset_peak_rss", "status_kib"]

MARKER = "REGKIT_MEASURE "


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``, ...) in KiB; None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ≥ 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status_kib("VmHWM") is not None
    except OSError:
        return False


def _cpu_peak(reset: bool) -> int:
    if reset:
        return status_kib("VmHWM") * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _run(spec: dict) -> dict:
    module, name = spec["setup"].split(":")
    device = spec["kwargs"].get("device", "cpu")
    step = getattr(importlib.import_module(module), name)(**spec["kwargs"])
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        reset = reset_peak_rss()
        before = status_kib("VmRSS") * 1024 if reset else _cpu_peak(reset)
    start = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - start
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = _cpu_peak(reset) - before
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {
        "peak_extra_bytes": peak,
        "first_seconds": first,
        "median_seconds": statistics.median(times) if times else first,
        "repeats": len(times),
    }


def measure_in_fresh_process(setup: str, *, repeats: int = 0, timeout: float | None = None, **kwargs) -> dict:
    """Run ``setup(**kwargs)()`` in a fresh interpreter; its peak extra memory and times.

    Returns ``{"peak_extra_bytes", "first_seconds", "median_seconds", "repeats"}``, or
    ``{"error": ...}`` when the child fails (out of memory, an exception, the timeout).
    """
    spec = json.dumps({"setup": setup, "kwargs": kwargs, "repeats": repeats})
    try:
        child = subprocess.run(
            [sys.executable, "-m", "regkit.workbook.measure", spec],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in child.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    reason = child.stderr.strip().splitlines()[-1:] or [f"exit status {child.returncode}"]
    return {"error": f"exit status {child.returncode}: {reason[0]}"}


def median_time(fn: Callable[[], object], *, repeats: int = 7, warmup: int = 2, min_seconds: float = 0.05) -> float:
    """Median wall time of ``fn()`` in seconds, in this process; each sample loops until ``min_seconds``."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        samples.append(elapsed / calls)
    return statistics.median(samples)


if __name__ == "__main__":
    print(MARKER + json.dumps(_run(json.loads(sys.argv[1]))), flush=True)
