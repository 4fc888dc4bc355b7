"""Notebook runs as tasks on ``dask.distributed``: a local cluster by default, any cluster by address.

The unit of work is one notebook execution — (slug, profile, parameters, destination) —
executed by :func:`regkit.workbook.runner.run_notebook` on a worker, with the runner's
semantics unchanged: the run executes into a temporary folder and replaces ``<dest>/<slug>/``
only on success, a failure keeps the previous outputs and the failed notebook, and the other
runs go on. A worker that dies mid-run is reported as that run's failure (the scheduler is told
not to retry it), never as a hang.

Where the runs go:

* default: a :class:`distributed.LocalCluster` started for the call — one process per worker,
  one Dask thread each, ``workers`` workers (default: the number of cores, but never more than
  there are runs, so that a run alone gets all the cores) — and torn down after;
* ``scheduler="tcp://host:8786"`` (or ``$REGKIT_SCHEDULER``): an existing scheduler, e.g. a
  ``dask-jobqueue`` Slurm/PBS cluster or ``dask scheduler`` + ``dask worker`` started by hand.
  The workers must see the same checkout at the same path (a shared filesystem).

Thread pools are sized to the machine: each run's torch / BLAS / OpenMP threads are its worker's
share of its host's cores, ``max(1, cores // workers on that host)``, set in the environment the
notebook's kernel inherits. (Two runs with two threads each on two cores slow each other 10–19×.)
A notebook spends its share on parallel single-threaded job processes where its jobs are
independent (:func:`regkit.workbook.sweeps.run_jobs` with ``processes=run.processes``).

Longest first: runs are prioritized by the wall time of the committed reference run of the same
notebook and profile (``outputs/<slug>/claims.json``; unknown runs first), so the longest do not
start last and leave the other workers idle.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regkit.workbook.runner import RunResult, run_notebook

SCHEDULER_ENV = "REGKIT_SCHEDULER"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class RunSpec:
    """One notebook execution: what :func:`run_notebook` is called with on a worker."""

    slug: str
    profile: str = "full"
    parameters: dict[str, Any] = field(default_factory=dict)
    destination: str | None = None
    allow_dirty: bool = False


def threads_per_run(cores: int, workers_on_host: int) -> int:
    """Each worker's share of its host's cores (at least one thread)."""
    if cores < 1 or workers_on_host < 1:
        raise ValueError(f"cores and workers_on_host must be ≥ 1, got {cores} and {workers_on_host}")
    return max(1, cores // workers_on_host)


def expected_seconds(root: Path, spec: RunSpec) -> float:
    """The wall time of the committed reference run of ``spec``'s notebook in its profile;
    ``inf`` when there is none (or it cannot be read)."""
    from regkit.workbook.claims import SchemaError, load_record

    path = Path(root) / "outputs" / spec.slug / "claims.json"
    try:
        record = load_record(path)
    except (OSError, ValueError, KeyError, SchemaError):
        return float("inf")
    return record.wall_seconds if record.profile == spec.profile else float("inf")


def _task(root: str, spec: RunSpec, threads: dict[str, int]) -> RunResult:
    """The task's body: run one notebook with this worker's share of its host's cores."""
    from distributed import get_worker

    share = threads.get(get_worker().address, 1)
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(share)))
    destination = Path(spec.destination) if spec.destination else None
    return run_notebook(
        Path(root), spec.slug, profile=spec.profile, parameters=spec.parameters, destination=destination,
        allow_dirty=spec.allow_dirty,
    )  # fmt: skip


def worker_threads(client) -> dict[str, int]:
    """Worker address → threads per run: its host's cores over the number of workers on that host."""
    cores = client.run(os.cpu_count)  # address → cores of that worker's host
    per_host = Counter(address.rsplit(":", 1)[0] for address in cores)
    return {a: threads_per_run(c or 1, per_host[a.rsplit(":", 1)[0]]) for a, c in cores.items()}


@contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: connected to ``scheduler`` (or ``$REGKIT_SCHEDULER``), else a fresh LocalCluster.

    Args:
        workers: LocalCluster size (default: the number of cores); ignored with a scheduler address.
        scheduler: ``tcp://host:port`` of a running Dask scheduler.

    Raises ``ValueError`` for ``workers < 1``; connection errors of ``distributed`` propagate.
    """
    import dask
    import distributed

    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    if scheduler:
        with distributed.Client(scheduler, timeout="30s") as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    threads = str(threads_per_run(os.cpu_count() or 1, n))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False}):
        with distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40,
            env=dict.fromkeys(THREAD_VARIABLES, threads),
        ) as local, distributed.Client(local) as client:  # fmt: skip
            yield client


def submit_runs(
    root: Path,
    specs: list[RunSpec],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    progress: bool = True,
    client=None,
) -> list[RunResult]:
    """Run every spec as a Dask task; return one :class:`RunResult` per spec, in the order given.

    A task whose worker died, or that raised before the notebook ran (a refused run), comes back
    as a failed result with the error. ``on_result`` is called as each run finishes (to write its
    status, print its line). A progress bar over the tasks is shown on the terminal. ``client``:
    an open ``distributed.Client`` to use instead of starting a cluster (``workers``/``scheduler``
    are then ignored).
    """
    if client is None:
        # no idle workers: fewer runs than workers get a larger share of the cores each (one run: all of them)
        workers = min(workers or os.cpu_count() or 1, max(len(specs), 1))
        with cluster(workers, scheduler) as own:
            return submit_runs(root, specs, on_result=on_result, progress=progress, client=own)
    from distributed import as_completed
    from tqdm.auto import tqdm

    results: dict[int, RunResult] = {}
    print(f"dask: {len(client.scheduler_info()['workers'])} worker(s), dashboard {client.dashboard_link}", flush=True)
    threads = worker_threads(client)
    expected = [expected_seconds(root, spec) for spec in specs]
    order = sorted(range(len(specs)), key=lambda i: -expected[i])  # longest first
    futures = {
        client.submit(_task, str(root), specs[i], threads, pure=False, priority=len(specs) - rank): i
        for rank, i in enumerate(order)
    }
    bar = tqdm(total=len(specs), desc="notebook runs", unit="run", disable=not progress)
    for future in as_completed(futures):
        i = futures[future]
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a dead worker or a refused run is this run's failure
            error = f"{type(exc).__name__}: {exc}"
            result = RunResult(specs[i].slug, False, 0.0, str(specs[i].destination or ""), error)
        results[i] = result
        bar.update(1)
        if on_result:
            on_result(result)
    bar.close()
    return [results[i] for i in range(len(specs))]


__all__ = [
    "RunSpec",
    "SCHEDULER_ENV",
    "THREAD_VARIABLES",
    "cluster",
    "submit_runs",
    "expected_seconds",
    "threads_per_run",
    "worker_threads",
]
