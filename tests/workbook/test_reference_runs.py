"""The committed reference run: every record is of the current schema, traceable to a clean commit,
and every verdict can be recomputed from its stored samples alone."""

import pathlib

import pytest

from regkit.workbook.claims import load_record
from regkit.workbook.evidence import combine

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDS = sorted((ROOT / "outputs").glob("*/claims.json"))
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_has_a_reference_run():
    assert sorted(p.parent.name for p in RECORDS) == NOTEBOOKS


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.parent.name)
def test_reference_run_is_traceable_and_recomputable(path):
    record = load_record(path)  # raises on another schema
    assert record.profile == "full"
    assert record.git_commit and not record.git_commit.endswith("+dirty"), "rerun from a clean commit"
    for claim in record.claims:
        for e in claim.evidence:
            assert e.recompute() == e, f"{claim.id}: {e.label} does not follow from its samples"
        if claim.evidence:
            assert combine(e.verdict for e in claim.evidence) == claim.verdict
        else:
            assert claim.verdict == "not_assessed" and claim.note
