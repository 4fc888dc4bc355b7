"""Wall time of ``make stability PROFILE=quick BLOCKS=3`` over every notebook with 1 and with 2 local
Dask workers, in one sitting (issue: runs on Dask; target ratio ≤ 0.6 on 2 cores).

Each setting runs ``python -m regkit.workbook stability --profile quick --blocks 3 --workers N`` in a
fresh process (cluster start and teardown included) on the committed notebooks; the quick-profile
stability records go to ``scratch/stability/quick/``. Run it on a quiet machine: other jobs on the
same cores distort both times. Writes ``outputs/benchmarks/stability_workers.json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from common import write

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = 3


def timed_stability(workers: int) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "regkit.workbook",
            "stability",
            "--profile",
            "quick",
            "--blocks",
            str(BLOCKS),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    print(f"workers={workers}: {seconds:.0f} s, exit {done.returncode}", flush=True)
    return {
        "workers": workers,
        "seconds": round(seconds, 1),
        "exit_status": done.returncode,
        "output_tail": done.stdout[-1500:] + done.stderr[-1500:],
    }


def main() -> None:
    runs = [timed_stability(1), timed_stability(2)]
    ratio = runs[1]["seconds"] / runs[0]["seconds"]
    print(f"WORKERS=2 / WORKERS=1 = {ratio:.2f} (target ≤ 0.6)")
    write(
        "stability_workers",
        {"blocks": BLOCKS, "profile": "quick", "runs": runs, "ratio_2_over_1": round(ratio, 3), "target": 0.6},
    )


if __name__ == "__main__":
    main()
