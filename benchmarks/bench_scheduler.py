"""Overhead of running notebooks as Dask tasks vs calling papermill directly (issue: runs on Dask).

A trivial notebook (one cell) in a throwaway workbook, run N times (a) directly through
``runner.run_notebook`` (papermill, one kernel per run) and (b) as N Dask tasks on one LocalCluster
(``tasks.submit_runs``), cluster start and teardown included. Reported: seconds per run for each
path and the extra seconds per run of the Dask path, into ``outputs/benchmarks/scheduler.json``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from regkit.workbook import runner, tasks

RUNS = 6
ROOT = Path(__file__).resolve().parents[1]


def trivial_workbook(folder: Path) -> None:
    (folder / "pyproject.toml").write_text("")
    (folder / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\ndevice = "cpu"\noutput_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("value = 1 + 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "notebooks" / "trivial.ipynb")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trivial_workbook(folder)
        runner.run_notebook(folder, "trivial", profile="quick")  # warm-up: kernel spec, imports, disk cache
        direct = []
        for _ in range(RUNS):
            started = time.perf_counter()
            assert runner.run_notebook(folder, "trivial", profile="quick").ok
            direct.append(time.perf_counter() - started)
        spec = tasks.RunSpec("trivial", "quick")
        started = time.perf_counter()
        with tasks.cluster(workers=1) as client:
            cluster_start = time.perf_counter() - started
            tasks.submit_runs(folder, [spec], client=client, progress=False)  # warm-up, as for the direct path
            through_dask = []
            for _ in range(RUNS):
                started = time.perf_counter()
                assert all(r.ok for r in tasks.submit_runs(folder, [spec], client=client, progress=False))
                through_dask.append(time.perf_counter() - started)
    per_run_direct = statistics.median(direct)
    per_run_dask = statistics.median(through_dask)
    record = {
        "runs": RUNS,
        "direct_seconds_per_run_median": round(per_run_direct, 3),
        "dask_seconds_per_run_median": round(per_run_dask, 3),
        "dask_extra_seconds_per_run": round(per_run_dask - per_run_direct, 3),
        "ratio_dask_over_direct": round(per_run_dask / per_run_direct, 3),
        "cluster_start_seconds": round(cluster_start, 3),
        "note": "one LocalCluster worker, warm; starting the cluster is paid once per command (cluster_start_seconds)",
    }
    out = ROOT / "outputs" / "benchmarks" / "scheduler.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
