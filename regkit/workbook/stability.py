"""Does each verdict survive held-out seeds? Rerun notebooks on seed blocks and compare verdicts.

Block ``b`` (1, 2, …) runs the notebook with ``seed = 1000·b``: its seeds ``1000·b, 1000·b + 1, …``
are disjoint from the reference run's (``0, 1, …``) and from every other block's as long as a
profile uses fewer than 1,000 seeds. The blocks run as parallel Dask tasks
(:func:`regkit.workbook.tasks.submit_runs`) into ``scratch/stability/<profile>/block<b>/``.

Per claim, ``stability.json`` keeps the verdict and the evidence intervals of each block beside
the reference verdict (the committed run, when it is of the same profile) and says:

* ``stable``: every block's verdict equals the reference's (or, without a reference, each other's);
* ``flip``: ``reproduced`` and ``not_reproduced`` both occur — the report flags it in red.

Full-profile records go to ``outputs/<slug>/stability.json`` (beside the reference run they
qualify; a new reference run replaces the folder and so drops the stale record); other profiles
to ``scratch/stability/<profile>/<slug>/stability.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from regkit.workbook.claims import Record, SchemaError, load_record
from regkit.workbook.paths import scratch_dir
from regkit.workbook.tasks import RunSpec

SEED_BLOCK = 1000
STABILITY_SCHEMA = 1


def block_seed(block: int) -> int:
    """The first seed of held-out block ``block`` (≥ 1)."""
    if block < 1:
        raise ValueError(f"block must be ≥ 1 (block 0 is the reference run), got {block}")
    return SEED_BLOCK * block


def block_dir(root: Path, profile: str, block: int) -> Path:
    return scratch_dir(root) / "stability" / profile / f"block{block}"


def specs(root: Path, slugs: list[str], blocks: int, profile: str, parameters: dict | None = None) -> list[RunSpec]:
    """One run per (slug, block), each into its block's scratch folder."""
    if blocks < 1:
        raise ValueError(f"blocks must be ≥ 1, got {blocks}")
    if parameters and "seed" in parameters:
        raise ValueError("parameter 'seed' is set by the stability blocks; leave it out")
    return [
        RunSpec(slug, profile, {**(parameters or {}), "seed": block_seed(b)}, str(block_dir(root, profile, b)))
        for slug in slugs
        for b in range(1, blocks + 1)
    ]


def label(reference: str | None, verdicts: list[str]) -> str:
    """``"stable 3/3"`` or ``"unstable (reproduced 2, inconclusive 1)"``."""
    target = reference if reference is not None else (verdicts[0] if verdicts else None)
    agree = sum(v == target for v in verdicts)
    if verdicts and agree == len(verdicts):
        return f"stable {agree}/{len(verdicts)}"
    counts = Counter(verdicts)
    return "unstable (" + ", ".join(f"{v.replace('_', ' ')} {n}" for v, n in counts.most_common()) + ")"


def compare_blocks(slug: str, profile: str, reference: Record | None, blocks: dict[int, Record | None]) -> dict:
    """The stability record of one notebook: per claim, the reference verdict and each block's."""
    ids = [c.id for c in reference.claims] if reference else []
    for record in blocks.values():
        ids += [c.id for c in (record.claims if record else ()) if c.id not in ids]
    claims = []
    for claim_id in ids:
        ref = next((c for c in reference.claims if c.id == claim_id), None) if reference else None
        per_block = []
        for b, record in sorted(blocks.items()):
            claim = next((c for c in record.claims if c.id == claim_id), None) if record else None
            per_block.append(
                {
                    "block": b,
                    "seed": block_seed(b),
                    "verdict": claim.verdict if claim else "missing",
                    "evidence": [
                        {
                            "label": e.label,
                            "estimate": e.estimate,
                            "low": e.low,
                            "high": e.high,
                            "n": e.n,
                            "verdict": e.verdict,
                        }
                        for e in (claim.evidence if claim else ())
                    ],
                }  # fmt: skip
            )
        verdicts = [p["verdict"] for p in per_block]
        reference_verdict = ref.verdict if ref else None
        seen = set(verdicts) | ({reference_verdict} if reference_verdict else set())
        claims.append(
            {
                "id": claim_id,
                "reference_verdict": reference_verdict,
                "blocks": per_block,
                "agree": sum(v == (reference_verdict or verdicts[0]) for v in verdicts),
                "of": len(verdicts),
                "label": label(reference_verdict, verdicts),
                "stable": label(reference_verdict, verdicts).startswith("stable"),
                "flip": {"reproduced", "not_reproduced"} <= seen,
            }
        )
    return {
        "schema_version": STABILITY_SCHEMA,
        "slug": slug,
        "profile": profile,
        "reference_commit": reference.git_commit if reference else None,
        "block_commits": {str(b): (r.git_commit if r else None) for b, r in sorted(blocks.items())},
        "claims": _finite(claims),
    }


def _finite(value):
    """JSON-safe: infinite interval bounds become ``None``."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


def _load(path: Path) -> Record | None:
    try:
        return load_record(path)
    except (OSError, SchemaError):
        return None


def write(root: Path, slugs: list[str], blocks: int, profile: str) -> list[Path]:
    """Collect the blocks' records and write each slug's ``stability.json``; return the paths."""
    written = []
    for slug in slugs:
        reference = _load(root / "outputs" / slug / "claims.json")
        if reference is not None and reference.profile != profile:
            reference = None
        records = {b: _load(block_dir(root, profile, b) / slug / "claims.json") for b in range(1, blocks + 1)}
        data = compare_blocks(slug, profile, reference, records)
        folder = root / "outputs" / slug if profile == "full" else scratch_dir(root) / "stability" / profile / slug
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "stability.json"
        path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
        written.append(path)
    return written


def load(path: Path) -> dict:
    """Read a ``stability.json``; ``ValueError`` if it is of another schema."""
    data = json.loads(Path(path).read_text())
    if data.get("schema_version") != STABILITY_SCHEMA:
        raise ValueError(f"{path} has stability schema {data.get('schema_version')!r}, expected {STABILITY_SCHEMA}")
    return data


__all__ = ["SEED_BLOCK", "block_seed", "compare_blocks", "label", "load", "specs", "write"]
