"""Shared benchmark helpers: the machine description and JSON output (timing: :mod:`regkit.workbook.measure`)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python benchmarks/bench_x.py` from anywhere

OUT = ROOT / "outputs" / "benchmarks"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write(name: str, results: dict, *, out: Path = OUT) -> Path:
    """Write ``<out>/<name>.json`` (default ``outputs/benchmarks/``) with the machine description."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **results}, indent=2) + "\n")
    return path
