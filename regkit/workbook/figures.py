"""Figures: one seaborn theme, a fixed panel size and dpi, PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

#: Size of one panel in inches and the resolution of every saved figure.
PANEL_SIZE = (4.0, 3.0)
DPI = 120


def set_theme() -> None:
    """The workbook's plotting theme (seaborn "whitegrid", colorblind palette)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` with the fixed panel size: every figure of a grid shape has the same pixels."""
    width, height = PANEL_SIZE
    kwargs.setdefault("squeeze", False)
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def save_figure(fig, path: Path | str, *, show: bool = True) -> Path:
    """Save ``fig`` as PNG at the workbook dpi; display it inline when running in IPython."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                display(fig)
        except ImportError:
            pass
    plt.close(fig)
    return path


def arm_errorbars(results, metrics, arms, *, by: str = "dataset", arm_col: str = "arm", titles=None):
    """One panel per metric: for each ``by`` group on the x axis, each arm's mean ± standard deviation
    over its rows (seeds) of ``results`` (a DataFrame), arms side by side in colours C0, C1, ...
    ``titles``: metric → panel title (default: the metric's name). The legend sits outside the panels, on the
    right, so it never hides a point. Returns the matplotlib figure."""
    groups = list(results[by].drop_duplicates())
    width = 0.7 / len(arms)
    fig, axes = subplots(1, len(metrics))
    for ax, metric in zip(axes[0], metrics):
        for j, group in enumerate(groups):
            for i, arm in enumerate(arms):
                values = results[(results[by] == group) & (results[arm_col] == arm)][metric]
                ax.errorbar(
                    j + (i - (len(arms) - 1) / 2) * width,
                    values.mean(),
                    yerr=values.std() if len(values) > 1 else 0,
                    fmt="o",
                    color=f"C{i}",
                    label=arm if j == 0 else None,
                    capsize=3,
                )
        ax.set(
            xticks=range(len(groups)), xticklabels=groups, title=(titles or {}).get(metric, metric.replace("_", " "))
        )
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
    return fig


def stream_curves(panels, *, stages_per_round: dict | None = None, ylabel: str = "online error"):
    """Curves along a test stream, one panel per entry of ``panels`` (title → {arm → samples}, ``samples`` an
    array ``(seeds, steps)``): each arm's mean over the seeds as a line (colours C0, C1, ... in arm order), and
    the 95 % t interval of that mean shaded (none with one seed). ``stages_per_round`` (title → steps per round)
    marks the rounds: a dotted line between rounds and the round number as the x tick. Panels of more than 20
    steps are twice the usual width, shorter curves get a marker per step. The legend sits outside the panels, on
    the right. Returns the matplotlib figure."""
    from scipy import stats

    long = max(np.shape(samples)[1] for arms in panels.values() for samples in arms.values()) > 20
    width, height = PANEL_SIZE
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(width * (2 if long else 1) * len(panels) + 1.5, height),
        squeeze=False,
        layout="constrained",
    )
    for ax, (title, arms) in zip(axes[0], panels.items()):
        for i, (arm, samples) in enumerate(arms.items()):
            samples = np.asarray(samples, dtype=float)
            steps, mean = np.arange(samples.shape[1]), samples.mean(0)
            ax.plot(steps, mean, color=f"C{i}", lw=1, label=arm, marker=None if long else ".")
            if len(samples) > 1:
                half = stats.t.ppf(0.975, len(samples) - 1) * samples.std(0, ddof=1) / math.sqrt(len(samples))
                ax.fill_between(steps, mean - half, mean + half, color=f"C{i}", alpha=0.2, lw=0)
        period = (stages_per_round or {}).get(title)
        if period:
            rounds = math.ceil(samples.shape[1] / period)
            for r in range(1, rounds):
                ax.axvline(r * period - 0.5, color="0.5", lw=0.6, ls=":")
            every = max(1, rounds // 10)
            ticks = range(0, rounds, every)
            ax.set_xticks([r * period + (period - 1) / 2 for r in ticks], [str(r + 1) for r in ticks])
            ax.set_xlabel("round")
        else:
            ax.set_xlabel("step along the stream")
        ax.set(title=title, ylabel=ylabel)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
    return fig


def line_grid(
    data,
    *,
    x: str,
    y: str,
    hue: str,
    rows,
    cols,
    title: str,
    ylabel: str,
    palette=None,
    ylim=None,
    sharey: bool = False,
):
    """A grid of seaborn line plots of ``y`` against ``x`` (one line per ``hue`` value: the mean over the
    rest of its rows, e.g. seeds, ± one standard deviation): one panel row per combination of the values
    of the columns ``rows`` and one panel column per combination of ``cols`` (each in order of first
    appearance in ``data``, a long DataFrame), x axes shared. ``title`` is a format string over those
    columns (``"{dataset}, {noise}"``); the legend is drawn in the first panel only. Returns the figure."""
    rows, cols = list(rows), list(cols)
    row_keys = list(data[rows].drop_duplicates().itertuples(index=False, name=None))
    col_keys = list(data[cols].drop_duplicates().itertuples(index=False, name=None))
    fig, axes = subplots(len(row_keys), len(col_keys), sharex=True, sharey=sharey)
    for i, row_key in enumerate(row_keys):
        for j, col_key in enumerate(col_keys):
            where = dict(zip(rows, row_key)) | dict(zip(cols, col_key))
            subset = data[np.logical_and.reduce([data[c] == v for c, v in where.items()])]
            ax = axes[i, j]
            sns.lineplot(subset, x=x, y=y, hue=hue, palette=palette, errorbar="sd", ax=ax, legend=(i == j == 0))
            ax.set(title=title.format(**where), ylabel=ylabel)
            if ylim is not None:
                ax.set_ylim(ylim)
    return fig


def image_grid(images, titles, *, ncols: int, cmap: str = "gray"):
    """The 2-D ``images`` (a sequence or an ``(N, H, W)`` array/tensor) in a grid of ``ncols`` columns,
    each under its title, without ticks. Returns the figure."""
    images, titles = list(images), list(titles)
    if len(images) != len(titles):
        raise ValueError(f"need one title per image, got {len(titles)} for {len(images)}")
    fig, axes = subplots(math.ceil(len(images) / ncols), ncols)
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap=cmap)
        ax.set(title=title, xticks=[], yticks=[])
    for ax in axes.flat[len(images) :]:
        ax.axis("off")
    return fig


def annotated_heatmaps(panels, *, fontsize: float = 6):
    """Side by side, one annotated heat map (no colour bar, every row labelled) per panel
    ``(title, values, fmt, cmap)``: ``values`` a DataFrame, ``fmt`` the annotations' format (``".2f"``).
    Returns the figure."""
    panels = list(panels)
    fig, axes = subplots(1, len(panels))
    for ax, (title, values, fmt, cmap) in zip(axes[0], panels):
        sns.heatmap(
            values, annot=True, fmt=fmt, cmap=cmap, ax=ax, cbar=False, annot_kws={"size": fontsize}, yticklabels=True
        )
        ax.set(title=title, xlabel="", ylabel="")
        ax.tick_params(labelsize=fontsize)
    return fig


#: Colour of each verdict in the claims figure and the report.
VERDICT_COLORS = {
    "reproduced": "#2a9d4b",
    "inconclusive": "#e0a100",
    "not_reproduced": "#d1342f",
    "not_assessed": "#999999",
}


def _position(value: float, threshold: float, sign: float, scale: float) -> float:
    """Where ``value`` sits in the claims figure: signed distance from the threshold, clipped to ±3."""
    if math.isinf(value):
        return math.copysign(3.0, sign * value)
    return max(-3.0, min(3.0, sign * (value - threshold) / scale))


def claims_figure(claims, title: str = ""):
    """One row per piece of evidence: the estimate and its 95 % interval against the threshold.

    Every row has its own scale: the x axis is the distance from the threshold in units of the
    row's scale (the largest of |estimate − threshold|, the interval's half-width and |threshold|),
    so that rows of different units share one panel; the threshold is the vertical line at 0 and
    the claim's side is shaded. Colours are the verdicts. ``claims``: the ledger's
    :class:`~regkit.workbook.claims.Claim` objects. Returns the matplotlib figure.
    """
    rows = [(c, e) for c in claims for e in c.evidence]
    fig, ax = plt.subplots(figsize=(PANEL_SIZE[0] * 2.2, 0.9 + 0.32 * max(len(rows), 1)), layout="constrained")
    labels = []
    for y, (claim, e) in enumerate(rows):
        finite = [v for v in (e.low, e.high) if math.isfinite(v)]
        scale = max([abs(e.estimate - e.threshold), abs(e.threshold), *(abs(v - e.estimate) for v in finite)])
        scale = scale or 1.0
        sign = 1.0 if e.direction in (">=", ">") else -1.0  # the claim's side is always to the right

        low, high = sorted(_position(v, e.threshold, sign, scale) for v in (e.low, e.high))
        color = VERDICT_COLORS[e.verdict]
        ax.plot([low, high], [y, y], color=color, lw=2.5, solid_capstyle="butt")
        ax.plot([_position(e.estimate, e.threshold, sign, scale)], [y], "o", color=color, ms=5)
        labels.append(f"{claim.id} · {e.label}"[:70])
    ax.axvline(0, color="black", lw=1)
    ax.axvspan(0, 3.2, color=VERDICT_COLORS["reproduced"], alpha=0.06)
    ax.set(xlim=(-3.2, 3.2), ylim=(len(rows) - 0.5, -0.5), yticks=range(len(rows)), title=title)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("(estimate − threshold) / scale, claim's side to the right; bars: 95 % interval", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    right = ax.twinx()  # the numbers themselves, beside each row
    right.set(ylim=ax.get_ylim(), yticks=range(len(rows)))
    right.set_yticklabels([e.describe() for _, e in rows], fontsize=7)
    right.grid(False)
    return fig
