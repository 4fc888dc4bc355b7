"""The papermill runner: execute notebooks headlessly, keep only successful results.

Each notebook executes into a fresh temporary folder (``scratch/tmp/``), receiving
``profile``, ``seed``, ``device`` and ``output_dir`` (that folder) as papermill parameters.
Only on success does the folder replace ``<dest>/<slug>/`` (``outputs/<slug>/`` for the full
profile, ``scratch/<profile>/<slug>/`` otherwise). A failure leaves the previous results
untouched, keeps the failed executed notebook in ``scratch/failed/<slug>/`` and lets the
other notebooks run; the caller gets every :class:`RunResult` and a summary. Unknown slugs
and parameters are rejected before anything runs.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from regkit.workbook.paths import scratch_dir
from regkit.workbook.session import PROFILE_ENV

#: Parameters every notebook's ``parameters`` cell defines; the runner sets them.
RUNNER_PARAMETERS = ("profile", "seed", "device", "output_dir")


class RunnerError(ValueError):
    """A run request that cannot start: unknown slug, unknown parameter, bad notebook."""


@dataclass(frozen=True)
class RunResult:
    slug: str
    ok: bool
    seconds: float
    destination: str
    error: str = ""
    failed_notebook: str = ""


def notebooks(root: Path) -> dict[str, Path]:
    """Slug → path of every ``notebooks/<slug>.ipynb``."""
    return {path.stem: path for path in sorted((root / "notebooks").glob("*.ipynb"))}


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell (exactly one is required)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise RunnerError(f"{path} must have exactly one cell tagged 'parameters', found {len(cells)}")
    tree = ast.parse(cells[0].source)
    params = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                params[node.targets[0].id] = ast.unparse(node.value)
    missing = [p for p in RUNNER_PARAMETERS if p not in params]
    if missing:
        raise RunnerError(f"{path}: the parameters cell must define {list(RUNNER_PARAMETERS)}; missing {missing}")
    return params


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"lam=2.5"`` → ``("lam", 2.5)``; values are Python literals, else strings."""
    if "=" not in text:
        raise RunnerError(f"a parameter must look like name=value, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def validate(root: Path, slugs: Iterable[str], parameters: dict[str, Any]) -> dict[str, Path]:
    """Check every slug exists and every parameter is defined by every selected notebook."""
    available = notebooks(root)
    slugs = list(slugs) or list(available)
    unknown = [s for s in slugs if s not in available]
    if unknown:
        raise RunnerError(f"unknown notebook slug(s) {unknown}; available: {sorted(available)}")
    for name in parameters:
        if name in ("output_dir", "profile"):
            raise RunnerError(f"parameter {name!r} is set by the runner; use its own option")
    for slug in slugs:
        known = notebook_parameters(available[slug])
        bad = [p for p in parameters if p not in known]
        if bad:
            raise RunnerError(f"unknown parameter(s) {bad} for notebook {slug!r}; it takes {sorted(known)}")
    return {s: available[s] for s in slugs}


def default_destination(root: Path, profile: str) -> Path:
    """``outputs/`` for the full profile (the reference run); scratch for anything else."""
    return root / "outputs" if profile == "full" else scratch_dir(root) / profile


def _error_text(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}".strip()


def run_notebook(
    root: Path,
    slug: str,
    *,
    profile: str = "full",
    parameters: dict[str, Any] | None = None,
    destination: Path | None = None,
    kernel_name: str = "python3",
) -> RunResult:
    """Execute one notebook; on success its folder replaces ``destination/slug``."""
    import papermill

    path = notebooks(root)[slug]
    destination = Path(destination or default_destination(root, profile))
    scratch = scratch_dir(root)
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=scratch / "tmp"))
    params = {**(parameters or {}), "profile": profile, "output_dir": str(work)}
    started = time.time()
    previous_profile = os.environ.get(PROFILE_ENV)
    os.environ[PROFILE_ENV] = profile  # the kernel inherits it: the notebook runs this profile
    try:
        papermill.execute_notebook(
            str(path),
            str(work / f"{slug}.ipynb"),
            parameters=params,
            cwd=str(path.parent),
            kernel_name=kernel_name,
            progress_bar=False,
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the notebook is reported, not raised
        failed = scratch / "failed" / slug
        shutil.rmtree(failed, ignore_errors=True)
        failed.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work), failed)
        return RunResult(
            slug,
            False,
            round(time.time() - started, 2),
            str(destination / slug),
            _error_text(exc),
            str(failed / f"{slug}.ipynb"),
        )
    finally:
        if previous_profile is None:
            os.environ.pop(PROFILE_ENV, None)
        else:
            os.environ[PROFILE_ENV] = previous_profile
    target = destination / slug
    target.parent.mkdir(parents=True, exist_ok=True)
    stale = target.with_name(f".{slug}.replaced")
    shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        target.rename(stale)
    shutil.move(str(work), target)
    shutil.rmtree(stale, ignore_errors=True)
    return RunResult(slug, True, round(time.time() - started, 2), str(target))


def status_path(root: Path, slug: str) -> Path:
    return scratch_dir(root) / "status" / f"{slug}.json"


def write_status(root: Path, result: RunResult) -> None:
    path = status_path(root, result.slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")


def read_status(root: Path, slug: str) -> RunResult | None:
    path = status_path(root, slug)
    return RunResult(**json.loads(path.read_text())) if path.exists() else None


def summary(results: list[RunResult]) -> str:
    """One line per notebook, failures with their error and where the failed notebook is."""
    lines = []
    for r in results:
        if r.ok:
            lines.append(f"  ok      {r.slug:<28} {r.seconds:8.1f} s  -> {r.destination}")
        else:
            lines.append(f"  FAILED  {r.slug:<28} {r.seconds:8.1f} s  {r.error}")
            lines.append(f"          executed notebook kept at {r.failed_notebook}")
    failed = sum(not r.ok for r in results)
    head = f"{len(results) - failed} of {len(results)} notebook(s) succeeded"
    return "\n".join([head, *lines])
