"""Where the workbook lives: the checkout root, its notebooks, outputs and scratch space."""

from __future__ import annotations

from pathlib import Path


def find_root(start: Path | str | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``notebooks/``
    and ``pyproject.toml``; ``start`` itself when there is none."""
    start = Path(start or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / "notebooks").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def scratch_dir(root: Path) -> Path:
    """Git-ignored working space: quick runs, temporary and failed executions, run status."""
    return root / "scratch"
