"""Paired comparisons across seeds: arms that share each seed's initialization, data and batches are
compared by their per-seed differences (a paired t interval, the number of seeds won)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from regkit.workbook.evidence import Evidence

__all__ = ["paired_evidence", "paired_samples", "paired_table", "seeds_needed"]


def paired_samples(
    results: pd.DataFrame, arm: str, other: str, metric: str, *, arm_col: str = "arm", seed_col: str = "seed", **where
) -> tuple[list[float], list[float]]:
    """The ``metric`` of ``arm`` and of ``other``, one value per seed, aligned by seed (seed order), in
    the rows of ``results`` matching ``where`` (column=value). ``ValueError`` if the arms' seeds differ."""
    rows = results
    for column, value in where.items():
        rows = rows[rows[column] == value]
    a = rows[rows[arm_col] == arm].set_index(seed_col)[metric].sort_index()
    b = rows[rows[arm_col] == other].set_index(seed_col)[metric].sort_index()
    if list(a.index) != list(b.index) or len(a) == 0:
        raise ValueError(
            f"arms {arm!r} and {other!r} must have the same seeds, got {list(a.index)} and {list(b.index)}"
        )
    return a.tolist(), b.tolist()


def paired_table(
    results: pd.DataFrame,
    arm: str,
    versus,
    metrics,
    *,
    by: str = "dataset",
    lower_is_better=("ece", "nll", "aurc"),
    confidence: float = 0.95,
    arm_col: str = "arm",
    seed_col: str = "seed",
) -> pd.DataFrame:
    """One row per (``by`` group, metric, other arm in ``versus``): the per-seed paired differences
    ``arm − other``: ``mean_difference``, its ``confidence`` paired t interval ``low``/``high`` and
    ``p`` value (:func:`scipy.stats.ttest_rel`; NaN with one seed), ``wins`` (seeds where ``arm`` is
    better: higher, or lower for the metrics in ``lower_is_better``) and ``seeds``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    versus = [versus] if isinstance(versus, str) else list(versus)
    rows = []
    for group in results[by].drop_duplicates():
        for metric in metrics:
            for other in versus:
                a, b = (
                    np.asarray(v, dtype=float)
                    for v in paired_samples(
                        results, arm, other, metric, arm_col=arm_col, seed_col=seed_col, **{by: group}
                    )
                )
                diff = a - b
                n, mean = len(diff), float(diff.mean())
                low = high = p = math.nan
                if n > 1:
                    sem = float(diff.std(ddof=1)) / math.sqrt(n)
                    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sem
                    low, high = mean - half, mean + half
                    p = float(stats.ttest_rel(a, b).pvalue)
                better = diff < 0 if metric in lower_is_better else diff > 0
                rows.append(
                    {
                        by: group,
                        "metric": metric,
                        "versus": other,
                        "mean_difference": mean,
                        "low": low,
                        "high": high,
                        "p": p,
                        "wins": int(better.sum()),
                        "seeds": n,
                    }
                )
    return pd.DataFrame(rows)


def seeds_needed(share: float, n: int) -> int:
    """How many of ``n`` paired seeds make a share of at least ``share``: ``max(1, ⌈share · n⌉)``
    (4 of 5 for 0.8). ``ValueError`` unless ``0 < share <= 1`` and ``n >= 1``."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return max(1, int(math.ceil(share * n)))


def paired_evidence(
    results: pd.DataFrame,
    arm: str,
    versus,
    metric: str,
    *,
    label: str,
    threshold: float,
    direction: str,
    wins: float | None = None,
    wins_label: str | None = None,
    by: str = "dataset",
    arm_col: str = "arm",
    seed_col: str = "seed",
) -> list[Evidence]:
    """Claim evidence from a long results table (one row per group, arm and seed): for each ``by``
    group (in order of appearance) and each other arm in ``versus`` (a name or a list), the paired
    :meth:`Evidence.paired` ``arm − other`` of ``metric`` (:func:`paired_samples`) against
    ``threshold`` / ``direction``; with ``wins`` (a share, e.g. 0.8), right after it the share of
    seeds on which ``arm`` is better (higher for ``direction`` ``>``/``>=``, lower for ``<``/``<=``),
    :meth:`Evidence.mean` of the per-seed indicator ``>=`` :func:`seeds_needed` ``/ n``.
    ``label`` and ``wins_label`` are format strings with the fields ``{group}`` and ``{other}``.
    ``ValueError`` for ``wins`` without ``wins_label`` and as :func:`paired_samples`."""
    if wins is not None and wins_label is None:
        raise ValueError("wins needs a wins_label")
    versus = [versus] if isinstance(versus, str) else list(versus)
    evidence = []
    for group in results[by].drop_duplicates():
        for other in versus:
            a, b = paired_samples(results, arm, other, metric, arm_col=arm_col, seed_col=seed_col, **{by: group})
            names = {"group": group, "other": other}
            evidence.append(Evidence.paired(label.format(**names), a, b, threshold=threshold, direction=direction))
            if wins is not None:
                better = [float(x > y) if direction in (">", ">=") else float(x < y) for x, y in zip(a, b)]
                need = seeds_needed(wins, len(a))
                evidence.append(
                    Evidence.mean(wins_label.format(**names), better, threshold=need / len(a), direction=">=")
                )
    return evidence
