"""The claims ledger: what a paper claims, the evidence we measured, and the verdict.

A notebook declares once which claims it expects not to reproduce at small scale
(:meth:`Ledger.expect`), then records each claim with its :class:`~regkit.workbook.evidence.Evidence`
— per-seed samples, a threshold and a direction — and the ledger decides it (the rule is in
:mod:`regkit.workbook.evidence`). ``claims.json`` (schema :data:`SCHEMA_VERSION`) keeps the
samples, intervals and verdicts, so that any verdict can be recomputed from the record alone;
:func:`load_record` is the one typed reader of it (the report, ``compare`` and the README table
use it).

A verdict never fails a run. :meth:`Ledger.check` (the notebook's last cell) raises only when
the contract is broken: no claims, or an expectation for a claim that was never recorded
(empty or non-finite samples are rejected when recorded). A verdict that differs from the
expectation is printed, noted in the claim, and listed by the runner and ``compare``.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import regkit
from regkit.workbook.evidence import VERDICTS, Evidence, combine

#: Version of the ``claims.json`` layout; :func:`load_record` rejects any other.
SCHEMA_VERSION = 2

#: The paths whose uncommitted changes make a run untraceable (generated files do not count).
CODE_PATHS = ("regkit", "notebooks", "tests", "benchmarks", "pyproject.toml", "Makefile")


class SchemaError(ValueError):
    """A ``claims.json`` that is not of this schema version, or is malformed."""


class ContractError(AssertionError):
    """A notebook broke the claims contract (no claims, unknown expectation ids)."""


@dataclass(frozen=True)
class Claim:
    """One claim: the statement, the paper's value, the criterion, the evidence and the verdict.

    ``expected`` is the verdict the notebook declared (``reproduced`` unless :meth:`Ledger.expect`
    said otherwise); ``note`` explains a claim that is expected not to reproduce, or is not assessed,
    and says how the verdict differs from the expectation when it does.
    """

    id: str
    statement: str
    paper: str
    criterion: str
    evidence: tuple[Evidence, ...]
    verdict: str
    expected: str = "reproduced"
    note: str = ""

    @property
    def ours(self) -> str:
        """The evidence in words: ``"label: estimate [low, high] (n) ≥ threshold"`` per piece."""
        return "; ".join(f"{e.label}: {e.describe()}" for e in self.evidence) or "—"

    @property
    def unexpected(self) -> bool:
        return self.verdict != self.expected

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "statement": self.statement,
            "paper": self.paper,
            "criterion": self.criterion,
            "verdict": self.verdict,
            "expected": self.expected,
            "note": self.note,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Claim:
        return cls(
            data["id"], data["statement"], data["paper"], data["criterion"],
            tuple(Evidence.from_dict(e) for e in data["evidence"]), data["verdict"],
            data.get("expected", "reproduced"), data.get("note", ""),
        )  # fmt: skip


def _jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/torch scalars, arrays and nested containers; NaN → None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def dirty_code(root: Path) -> list[str]:
    """Paths under :data:`CODE_PATHS` with uncommitted changes (untracked files included)."""
    present = [p for p in CODE_PATHS if (root / p).exists()]
    out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *present)
    return [line[3:] for line in out.splitlines() if line.strip()]


def git_commit(root: Path) -> str | None:
    """``HEAD``'s hash, with ``+dirty`` when the code (:data:`CODE_PATHS`) differs from it; None outside git."""
    try:
        head = _git(root, "rev-parse", "HEAD")
        dirty = dirty_code(root)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


@dataclass
class Ledger:
    """Claims and metrics of one notebook run."""

    slug: str
    paper: dict
    profile: str
    seed: int
    device: str
    root: Path
    claims: list[Claim] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    expectations: dict[str, tuple[str, str]] | None = None
    started: float = field(default_factory=time.time)

    def expect(self, expectations: dict[str, tuple[str, str]]) -> None:
        """Declare, once and before recording, the claims not expected to reproduce here.

        ``expectations`` maps a claim id to ``(verdict, why)``: the verdict this notebook expects
        in this profile (``not_reproduced``, ``inconclusive`` or ``not_assessed``) and the reason.
        Every other claim is expected ``reproduced``. Ids are checked when the run finishes.
        """
        if self.expectations is not None:
            raise ValueError("expect() is called once per run; merge the expectations into one mapping")
        if self.claims:
            raise ValueError("call expect() before recording the first claim")
        checked = {}
        for claim_id, value in expectations.items():
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ValueError(f"expectation for {claim_id!r} must be a (verdict, why) tuple, got {value!r}")
            verdict, why = value
            if verdict not in VERDICTS:
                raise ValueError(f"expected verdict for {claim_id!r} must be one of {VERDICTS}, got {verdict!r}")
            if not why:
                raise ValueError(f"expectation for {claim_id!r} needs the reason")
            checked[claim_id] = (verdict, why)
        self.expectations = checked

    def record(
        self,
        id: str,
        statement: str,
        *,
        paper: str,
        criterion: str,
        evidence: Evidence | Iterable[Evidence] | None,
        note: str = "",
    ) -> Claim:
        """Record a claim and decide it from ``evidence`` (one piece or several, combined).

        ``evidence=None`` records the claim as ``not_assessed`` in this profile; ``note`` must say why.
        Raises ``ValueError`` for a repeated id, a missing reason, or evidence of the wrong type.
        """
        if not isinstance(id, str) or not id:
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim id {id!r} is already recorded")
        pieces = () if evidence is None else (evidence,) if isinstance(evidence, Evidence) else tuple(evidence)
        if evidence is not None and not pieces:
            raise ValueError(f"claim {id!r}: evidence is empty; pass None and a note to record it not assessed")
        wrong = [type(e).__name__ for e in pieces if not isinstance(e, Evidence)]
        if wrong:
            raise ValueError(f"claim {id!r}: evidence must be Evidence objects, got {wrong}")
        expected, why = (self.expectations or {}).get(id, ("reproduced", ""))
        verdict = combine(e.verdict for e in pieces) if pieces else "not_assessed"
        notes = [n for n in (note, why) if n]
        if not pieces and not notes:
            raise ValueError(f"claim {id!r} is not assessed: say why in note")
        if verdict != expected:
            notes.append(f"Verdict {verdict}, expected {expected}.")
        claim = Claim(id, statement, str(paper), criterion, pieces, verdict, expected, " ".join(notes))
        self.claims.append(claim)
        return claim

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "slug": self.slug,
            "paper": self.paper,
            "profile": self.profile,
            "seed": self.seed,
            "device": self.device,
            "regkit_version": regkit.__version__,
            "git_commit": git_commit(self.root),
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - self.started, 2),
            "metrics": _jsonable(self.metrics),
            "claims": [c.to_dict() for c in self.claims],
        }

    def save(self, output_dir: Path | str) -> Path:
        """Write ``claims.json`` into ``output_dir``."""
        path = Path(output_dir) / "claims.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    def table(self) -> str:
        """The claims as a plain-text table, one line per piece of evidence."""
        rows = [("id", "verdict", "expected", "evidence")]
        for c in self.claims:
            pieces = [f"{e.label}: {e.describe()} → {e.verdict}" for e in c.evidence] or [c.note]
            rows.append((c.id, c.verdict, c.expected, pieces[0]))
            rows += [("", "", "", p) for p in pieces[1:]]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[3]]) for row in rows)

    def check(self) -> None:
        """Print the ledger and the verdicts that differ from the expectation.

        Raises :class:`ContractError` only when the contract is broken: no claim recorded, or an
        expectation for an id that was never recorded. A verdict never raises.
        """
        print(self.table())
        if not self.claims:
            raise ContractError(f"{self.slug}: no claim was recorded")
        recorded = {c.id for c in self.claims}
        unknown = sorted(set(self.expectations or {}) - recorded)
        if unknown:
            raise ContractError(f"{self.slug}: expectations for claims never recorded: {unknown}")
        for c in self.claims:
            if c.unexpected:
                print(f"finding: claim {c.id} is {c.verdict}, expected {c.expected}")


@dataclass(frozen=True)
class Record:
    """A ``claims.json`` as read by :func:`load_record`."""

    slug: str
    paper: dict
    profile: str
    seed: int
    device: str
    regkit_version: str
    git_commit: str | None
    started: str
    wall_seconds: float
    metrics: dict
    claims: tuple[Claim, ...]

    def counts(self) -> dict[str, int]:
        """Number of claims per verdict (every verdict of :data:`VERDICTS` present as a key)."""
        return {v: sum(c.verdict == v for c in self.claims) for v in VERDICTS}

    def summary(self) -> str:
        """``"3 reproduced · 1 inconclusive · 1 not reproduced of 5"`` (+ not assessed, + quick)."""
        n = self.counts()
        text = (
            f"{n['reproduced']} reproduced · {n['inconclusive']} inconclusive · "
            f"{n['not_reproduced']} not reproduced of {len(self.claims)}"
        )
        if n["not_assessed"]:
            text += f" ({n['not_assessed']} not assessed)"
        return text + (f" — {self.profile} profile" if self.profile != "full" else "")

    @property
    def unexpected(self) -> list[Claim]:
        return [c for c in self.claims if c.unexpected]


def load_record(path: Path | str) -> Record:
    """Read a ``claims.json``; raise :class:`SchemaError` if it is not of :data:`SCHEMA_VERSION`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path} is not valid JSON: {exc}") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has schema_version {version!r}; this regkit reads {SCHEMA_VERSION} — rerun the notebook"
        )
    try:
        return Record(
            data["slug"], data["paper"], data["profile"], int(data["seed"]), data["device"],
            data["regkit_version"], data["git_commit"], data["started"], float(data["wall_seconds"]),
            data.get("metrics", {}), tuple(Claim.from_dict(c) for c in data["claims"]),
        )  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"{path} is malformed: missing or wrong field {exc}") from exc


__all__ = [
    "CODE_PATHS",
    "Claim",
    "ContractError",
    "Ledger",
    "Record",
    "SCHEMA_VERSION",
    "SchemaError",
    "dirty_code",
    "git_commit",
    "load_record",
]
