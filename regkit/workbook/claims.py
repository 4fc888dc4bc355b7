"""The claims ledger: what a paper claims, what we measured, and the verdict.

A notebook records each claim with a criterion fixed before the run, the paper's value and
ours, and whether the criterion holds. The ledger writes ``claims.json`` (the record the
report and ``compare`` read) and, in the notebook's last cell, :meth:`Ledger.check` raises
when a claim expected to reproduce in this profile did not.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import regkit

VERDICTS = ("reproduced", "not_reproduced", "not_assessed")


@dataclass(frozen=True)
class Claim:
    """One claim. ``expected`` is the verdict the notebook expects in this profile; a claim
    known not to reproduce at small scale is expected ``not_reproduced`` and ``note`` says why."""

    id: str
    statement: str
    paper: Any
    ours: Any
    criterion: str
    verdict: str
    expected: str = "reproduced"
    note: str = ""


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


def git_commit(root: Path) -> str | None:
    """``HEAD``'s hash, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
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
    started: float = field(default_factory=time.time)

    def record(
        self,
        id: str,
        statement: str,
        *,
        paper: Any,
        ours: Any,
        criterion: str,
        holds: bool | None,
        expected: str = "reproduced",
        note: str = "",
    ) -> None:
        """Record a claim; ``holds=None`` means not assessed in this profile (say why in ``note``)."""
        if expected not in VERDICTS:
            raise ValueError(f"expected must be one of {VERDICTS}, got {expected!r}")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim id {id!r} is already recorded")
        verdict = "not_assessed" if holds is None else ("reproduced" if bool(holds) else "not_reproduced")
        self.claims.append(Claim(id, statement, _jsonable(paper), _jsonable(ours), criterion, verdict, expected, note))

    def to_dict(self) -> dict:
        return {
            "slug": self.slug,
            "paper": self.paper,
            "profile": self.profile,
            "seed": self.seed,
            "device": self.device,
            "regkit_version": regkit.__version__,
            "git_commit": git_commit(self.root),
            "started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - self.started, 2),
            "metrics": _jsonable(self.metrics),
            "claims": [asdict(c) for c in self.claims],
        }

    def save(self, output_dir: Path | str) -> Path:
        """Write ``claims.json`` into ``output_dir``."""
        path = Path(output_dir) / "claims.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def table(self) -> str:
        """The claims as a plain-text table."""
        rows = [("id", "verdict", "expected", "paper", "ours", "criterion")]
        rows += [(c.id, c.verdict, c.expected, str(c.paper), str(c.ours), c.criterion) for c in self.claims]
        widths = [min(60, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths)) for row in rows)

    def check(self) -> None:
        """Print the ledger; raise ``AssertionError`` if a claim expected to reproduce did not."""
        print(self.table())
        failed = [c for c in self.claims if c.expected == "reproduced" and c.verdict != "reproduced"]
        surprises = [c for c in self.claims if c.expected != "reproduced" and c.verdict == "reproduced"]
        for c in surprises:
            print(f"note: claim {c.id} reproduced although expected {c.expected} ({c.note})")
        if failed:
            raise AssertionError(
                "claims expected to reproduce did not: " + ", ".join(f"{c.id} ({c.verdict})" for c in failed)
            )


def load_claims(path: Path | str) -> dict:
    """Read a ``claims.json``."""
    return json.loads(Path(path).read_text())


def summarize(record: dict) -> str:
    """``"3/4 reproduced"``: reproduced claims over assessed claims."""
    assessed = [c for c in record["claims"] if c["verdict"] != "not_assessed"]
    reproduced = sum(c["verdict"] == "reproduced" for c in assessed)
    text = f"{reproduced}/{len(assessed)} reproduced"
    skipped = len(record["claims"]) - len(assessed)
    return text + (f", {skipped} not assessed" if skipped else "")


__all__ = ["Claim", "Ledger", "VERDICTS", "load_claims", "summarize", "git_commit"]
