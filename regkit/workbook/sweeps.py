"""Notebook plumbing shared by the experiments: logged training runs, fixed-step loops,
back-to-back timings, job grids run in worker processes (:func:`run_jobs`) and per-seed
selections of result tables.

Nothing here is a method: these helpers run, time and tabulate for the notebooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from regkit.workbook.training import LossFn, train

__all__ = ["back_to_back_timings", "fit_steps", "per_seed", "run_jobs", "train_logged"]


def train_logged(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    loss_fn: LossFn,
    generator: torch.Generator,
    log: Callable[[], dict],
    every: int = 1,
    batch_size: int | None = None,
    **labels,
) -> list[dict]:
    """Train with :func:`regkit.workbook.train` and log ``log()`` along the way.

    ``log()`` (model in eval mode, gradients off) is called before the first step and after
    every ``every``-th epoch and the last one. ``batch_size=None`` trains full-batch (one step
    per epoch on a permutation of all of ``x``). Returns the rows ``{**labels, "epoch": e, **log()}``
    for ``e = 0, every, 2·every, …, epochs``. Raises ``ValueError`` if ``every < 1`` (and what
    :func:`train` raises).
    """
    if every < 1:
        raise ValueError(f"every must be positive, got {every}")
    rows = []

    def snapshot(epoch: int) -> dict:
        if epoch % every == 0 or epoch == epochs:
            rows.append({**labels, "epoch": epoch, **log()})
        return {}

    model.eval()
    with torch.no_grad():
        snapshot(0)
    train(
        model,
        optimizer,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size or x.shape[0],
        loss_fn=loss_fn,
        generator=generator,
        evaluate=snapshot,
        progress=False,
    )
    return rows


def fit_steps(
    step_loss: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batches: Iterable[torch.Tensor],
    *,
    desc: str | None = None,
) -> np.ndarray:
    """One optimizer step per element of ``batches`` (e.g. pre-drawn index rows ``(steps, batch)``):
    ``loss = step_loss(batch)``, zero the gradients, backward, step. Returns the ``(steps,)`` losses
    (float64) in order. For step-based runs that are not epochs over a permutation (where
    :func:`regkit.workbook.train` does not fit)."""
    values = []
    for batch in tqdm(batches, desc=desc, disable=desc is None):
        loss = step_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(float(loss.detach()))
    return np.array(values)


def back_to_back_timings(
    steps: dict[str, Callable[[], object]], repeats: int, *, device: torch.device | str = "cpu", warmup: bool = False
) -> list[dict]:
    """Wall time of each zero-argument step, run back to back ``repeats`` times in this process.

    The order alternates (as given on even repeats, reversed on odd ones) so that neither step
    always runs second; ``warmup`` first runs each step once untimed (one-time initialization
    such as thread pools). CUDA is synchronized around each step. Returns one row per repeat:
    ``{"repeat": r, "<name>_s": seconds, ...}``. Raises ``ValueError`` if ``repeats < 1`` or
    ``steps`` is empty.
    """
    if repeats < 1 or not steps:
        raise ValueError(f"need repeats ≥ 1 and at least one step, got repeats={repeats}, steps={list(steps)}")
    cuda = torch.device(device).type == "cuda"
    if warmup:
        for step in steps.values():
            step()
    names, rows = list(steps), []
    for repeat in range(repeats):
        seconds = {}
        for name in names if repeat % 2 == 0 else names[::-1]:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            steps[name]()
            if cuda:
                torch.cuda.synchronize()
            seconds[name] = time.perf_counter() - start
        rows.append({"repeat": repeat, **{f"{name}_s": seconds[name] for name in names}})
    return rows


def run_jobs(
    fn: Callable[..., dict | list[dict]], jobs: Sequence[tuple], *, desc: str | None = None, processes: int = 1
) -> pd.DataFrame:
    """``fn(*job)`` for every job (with a progress bar when ``desc`` is given); each call returns
    a row or a list of rows. Returns all rows as one DataFrame, in job order.

    ``processes > 1`` runs the jobs in that many worker processes (joblib's ``loky`` backend:
    fresh interpreters, ``fn`` and its arguments sent by cloudpickle, so ``fn`` may be defined in
    a notebook but should not reference objects that cannot be pickled), each with one torch /
    BLAS thread: independent small-step jobs gain nothing from a second thread (the ldr_losses
    runs took 1,060 s with two threads against ≈ 880 s with one) and everything from a second
    core. Jobs must be independent and seed their own randomness; a job's result is then the
    same as in one single-threaded process. Pass :attr:`Session.processes` (the run's share of the
    cores on the CPU, 1 on an accelerator). Never for timing jobs: they would share the cores.
    Raises ``ValueError`` if ``processes < 1``.
    """
    if processes < 1:
        raise ValueError(f"processes must be ≥ 1, got {processes}")
    processes = min(processes, len(jobs))
    if processes <= 1:
        outputs = (fn(*job) for job in jobs)
    else:
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=1):
            outputs = Parallel(n_jobs=processes, batch_size=1, return_as="generator")(delayed(fn)(*job) for job in jobs)
    rows = []
    for out in tqdm(outputs, desc=desc, disable=desc is None, total=len(jobs)):
        rows += [out] if isinstance(out, dict) else list(out)
    return pd.DataFrame(rows)


def per_seed(
    table: pd.DataFrame | pd.Series, key, seeds: Sequence[int], column: str | None = None, scale: float = 1.0
) -> list[float]:
    """The values for ``key`` (a leading index label or tuple of labels) in seed order, times ``scale``.

    ``table`` is indexed by ``(..., seed)`` with ``seed`` last; ``column`` picks a DataFrame's
    column (``None`` for a Series). Evidence of a claim is built from these lists, paired across
    arms by seed. Raises ``KeyError`` if ``key`` or a seed is missing. An unsorted index is sorted
    first (looking up a prefix of an unsorted MultiIndex is slow and warns).
    """
    if not table.index.is_monotonic_increasing:
        table = table.sort_index()
    part = table.loc[key]
    values = part.loc[list(seeds)] if column is None else part.loc[list(seeds), column]
    return (values * scale).tolist()
