"""Figures: one seaborn theme, a fixed panel size and dpi, PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
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
