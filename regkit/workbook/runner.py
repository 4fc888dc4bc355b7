"""The papermill runner: execute notebooks headlessly, keep only successful results.

Each notebook executes into a fresh temporary folder (``scratch/tmp/``), receiving
``profile``, ``seed``, ``device`` and ``output_dir`` (that folder) as papermill parameters.
Only on success does the folder replace ``<dest>/<slug>/`` (``outputs/<slug>/`` for the full
profile, ``scratch/<profile>/<slug>/`` otherwise). A failure leaves the previous results
untouched, keeps the failed executed notebook in ``scratch/failed/<slug>/`` and lets the
other notebooks run; the caller gets every :class:`RunResult` and a summary. Unknown slugs
and parameters are rejected before anything runs.

A run never fails because of a verdict: the summary lists, per notebook, the claims whose verdict
differs from the notebook's expectation (findings, not failures). Reference runs are traceable:
writing into ``outputs/`` is refused while the code that produces it (:data:`CODE_PATHS`) has
uncommitted changes, unless ``allow_dirty`` is set — and then the record's ``git_commit`` ends in
``+dirty``, which the test suite refuses for committed records.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from regkit.workbook.claims import CODE_PATHS, SchemaError, dirty_code, load_record
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
    findings: tuple[str, ...] = ()


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
    options = {"profile": "--profile quick|full (make: PROFILE=…, or make quick)", "output_dir": "--dest DIR"}
    for name in parameters:
        if name in options:
            raise RunnerError(f"parameter {name!r} is set by the runner; use its option {options[name]} instead")
    for slug in slugs:
        known = notebook_parameters(available[slug])
        bad = [p for p in parameters if p not in known]
        if bad:
            raise RunnerError(f"unknown parameter(s) {bad} for notebook {slug!r}; it takes {sorted(known)}")
    return {s: available[s] for s in slugs}


def default_destination(root: Path, profile: str) -> Path:
    """``outputs/`` for the full profile (the reference run); scratch for anything else."""
    return root / "outputs" if profile == "full" else scratch_dir(root) / profile


def check_traceable(root: Path, destination: Path, allow_dirty: bool) -> None:
    """Refuse to write into ``outputs/`` from code with uncommitted changes (unless ``allow_dirty``)."""
    if allow_dirty or destination.resolve() != (root / "outputs").resolve():
        return
    try:
        changed = dirty_code(root)
    except (OSError, subprocess.CalledProcessError) as exc:  # not a git checkout: nothing to trace
        if (root / ".git").exists():
            raise RunnerError(f"cannot read the git status of {root}: {exc}") from exc
        return
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise RunnerError(
            f"refusing to write outputs/: the code ({', '.join(CODE_PATHS)}) has uncommitted changes ({shown}). "
            "Commit them so the reference run can be traced, or pass --allow-dirty (make ALLOW_DIRTY=1) "
            "for an experiment; its record is then marked +dirty."
        )


def findings(claims_json: Path) -> tuple[str, ...]:
    """``"id: verdict (expected …)"`` for every claim whose verdict differs from the expectation."""
    try:
        record = load_record(claims_json)
    except (OSError, SchemaError) as exc:
        return (f"claims.json unreadable: {exc}",)
    return tuple(f"{c.id}: {c.verdict} (expected {c.expected})" for c in record.unexpected)


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
    allow_dirty: bool = False,
) -> RunResult:
    """Execute one notebook; on success its folder replaces ``destination/slug``.

    Raises :class:`RunnerError` before running when ``destination`` is ``outputs/`` and the code has
    uncommitted changes (see :func:`check_traceable`). A failing notebook is returned, not raised.
    """
    import papermill

    path = notebooks(root)[slug]
    destination = Path(destination or default_destination(root, profile))
    check_traceable(root, destination, allow_dirty)
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
            # the kernel's own notices (e.g. "running over TCP without encryption" on a local
            # kernel) are not the notebook's output; its errors still show
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
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
    found = findings(target / "claims.json") if (target / "claims.json").exists() else ()
    return RunResult(slug, True, round(time.time() - started, 2), str(target), findings=found)


def status_path(root: Path, slug: str) -> Path:
    return scratch_dir(root) / "status" / f"{slug}.json"


def write_status(root: Path, result: RunResult) -> None:
    path = status_path(root, result.slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")


def read_status(root: Path, slug: str) -> RunResult | None:
    path = status_path(root, slug)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["findings"] = tuple(data.get("findings", ()))
    return RunResult(**data)


def summary(results: list[RunResult]) -> str:
    """One line per notebook, failures with their error and where the failed notebook is."""
    lines = []
    for r in results:
        if r.ok:
            lines.append(f"  ok      {r.slug:<28} {r.seconds:8.1f} s  -> {r.destination}")
            lines += [f"          finding: {f}" for f in r.findings]
        else:
            lines.append(f"  FAILED  {r.slug:<28} {r.seconds:8.1f} s  {r.error}")
            lines.append(f"          executed notebook kept at {r.failed_notebook}")
    failed = sum(not r.ok for r in results)
    head = f"{len(results) - failed} of {len(results)} notebook(s) succeeded"
    n_findings = sum(len(r.findings) for r in results)
    if n_findings:
        head += f"; {n_findings} verdict(s) differ from their notebook's expectation (findings, not failures)"
    return "\n".join([head, *lines])
