"""Shared benchmark helpers: robust timing, side-by-side ratios, JSON and figure output."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python benchmarks/bench_x.py` from anywhere

OUT = ROOT / "outputs" / "benchmarks"


def median_time(fn: Callable[[], object], *, repeats: int = 7, warmup: int = 2, min_seconds: float = 0.05) -> float:
    """Median wall time of ``fn()`` in seconds; each sample loops until ``min_seconds``."""
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


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write(name: str, results: dict) -> Path:
    """Write ``outputs/benchmarks/<name>.json`` with the machine description."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **results}, indent=2) + "\n")
    return path
