"""The claims ledger: expectations, recording, claims.json (schema, reader), the final check."""

import json

import pytest
import torch

from regkit.workbook.claims import SCHEMA_VERSION, ContractError, Ledger, SchemaError, load_record
from regkit.workbook.evidence import Evidence

PAPER = {"title": "A paper", "year": 2024, "arxiv": "2401.00001", "seeds": ["000.txt"]}
HOLDS = Evidence.mean("gain", [4.0, 4.5, 5.0], threshold=3, direction=">=")
FAILS = Evidence.mean("gain", [0.0, 1.0, 0.5], threshold=3, direction=">=")
UNSURE = Evidence.mean("gain", [1.0, 5.0, 3.0], threshold=3, direction=">=")


def ledger(tmp_path):
    return Ledger(slug="toy", paper=PAPER, profile="quick", seed=3, device="cpu", root=tmp_path)


def test_verdicts_come_from_the_evidence(tmp_path):
    book = ledger(tmp_path)
    book.record("a", "s", paper="p", criterion="c", evidence=HOLDS)
    book.record("b", "s", paper="p", criterion="c", evidence=[HOLDS, FAILS])
    book.record("c", "s", paper="p", criterion="c", evidence=[HOLDS, UNSURE])
    book.record("d", "s", paper="p", criterion="c", evidence=None, note="needs the full profile")
    assert [c.verdict for c in book.claims] == ["reproduced", "not_reproduced", "inconclusive", "not_assessed"]
    with pytest.raises(ValueError, match="already"):
        book.record("a", "s", paper="p", criterion="c", evidence=HOLDS)
    with pytest.raises(ValueError, match="say why"):
        book.record("e", "s", paper="p", criterion="c", evidence=None)
    with pytest.raises(ValueError, match="Evidence objects"):
        book.record("f", "s", paper="p", criterion="c", evidence=[0.5])
    with pytest.raises(ValueError, match="empty"):
        book.record("g", "s", paper="p", criterion="c", evidence=[])


def test_expectations_are_declared_once_and_checked(tmp_path, capsys):
    book = ledger(tmp_path)
    book.expect({"known": ("not_reproduced", "too small a model"), "typo": ("not_reproduced", "x")})
    with pytest.raises(ValueError, match="once"):
        book.expect({})
    book.record("known", "s", paper="p", criterion="c", evidence=UNSURE)
    book.record("ok", "s", paper="p", criterion="c", evidence=FAILS)
    known, ok = book.claims
    assert known.expected == "not_reproduced" and "too small a model" in known.note
    assert "Verdict inconclusive, expected not_reproduced." in known.note
    assert ok.expected == "reproduced" and ok.unexpected
    with pytest.raises(ContractError, match="typo"):  # an expectation for an id never recorded
        book.check()


def test_bad_expectations(tmp_path):
    with pytest.raises(ValueError, match="must be one of"):
        ledger(tmp_path).expect({"a": ("maybe", "why")})
    with pytest.raises(ValueError, match="reason"):
        ledger(tmp_path).expect({"a": ("not_reproduced", "")})
    with pytest.raises(ValueError, match="tuple"):
        ledger(tmp_path).expect({"a": "not_reproduced"})
    book = ledger(tmp_path)
    book.record("a", "s", paper="p", criterion="c", evidence=HOLDS)
    with pytest.raises(ValueError, match="before recording"):
        book.expect({"a": ("not_reproduced", "why")})


def test_a_verdict_never_fails_the_check(tmp_path, capsys):
    book = ledger(tmp_path)
    book.record("worse", "s", paper="p", criterion="c", evidence=FAILS)
    book.check()  # not_reproduced although expected reproduced: a finding, printed
    assert "finding: claim worse is not_reproduced, expected reproduced" in capsys.readouterr().out


def test_no_claims_breaks_the_contract(tmp_path):
    with pytest.raises(ContractError, match="no claim"):
        ledger(tmp_path).check()


def test_schema_round_trip_and_recomputation(tmp_path):
    book = ledger(tmp_path)
    book.metrics["accuracy"] = torch.tensor([0.5, 0.25])
    book.metrics["nan"] = float("nan")
    book.record("a", "statement", paper="≥ 90%", criterion="gain ≥ 3", evidence=[HOLDS, UNSURE], note="n")
    path = book.save(tmp_path / "out")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["metrics"] == {"accuracy": [0.5, 0.25], "nan": None}
    piece = raw["claims"][0]["evidence"][0]
    for key in ("samples", "estimate", "low", "high", "n", "method", "verdict", "threshold", "direction"):
        assert key in piece
    record = load_record(path)
    assert record.claims == tuple(book.claims)
    assert all(e.recompute() == e for c in record.claims for e in c.evidence)
    assert record.summary() == "0 reproduced · 1 inconclusive · 0 not reproduced of 1 — quick profile"


def test_reader_rejects_other_schemas(tmp_path):
    old = tmp_path / "claims.json"
    old.write_text(json.dumps({"slug": "x", "claims": []}))
    with pytest.raises(SchemaError, match="schema_version None"):
        load_record(old)
    old.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "slug": "x"}))
    with pytest.raises(SchemaError, match="malformed"):
        load_record(old)
    old.write_text("{")
    with pytest.raises(SchemaError, match="JSON"):
        load_record(old)
