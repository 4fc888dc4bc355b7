"""The claims ledger: verdicts, the claims.json record, the final check."""

import json

import numpy as np
import pytest
import torch

from regkit.workbook.claims import Ledger, summarize

PAPER = {"title": "A paper", "year": 2024, "arxiv": "2401.00001", "seeds": ["000.txt"]}


def ledger(tmp_path):
    return Ledger(slug="toy", paper=PAPER, profile="quick", seed=3, device="cpu", root=tmp_path)


def test_verdicts_follow_holds(tmp_path):
    book = ledger(tmp_path)
    book.record("a", "s", paper=1, ours=1, criterion="c", holds=True)
    book.record("b", "s", paper=1, ours=0, criterion="c", holds=np.bool_(False))
    book.record("c", "s", paper=1, ours=None, criterion="c", holds=None)
    assert [c.verdict for c in book.claims] == ["reproduced", "not_reproduced", "not_assessed"]
    with pytest.raises(ValueError, match="already"):
        book.record("a", "s", paper=1, ours=1, criterion="c", holds=True)
    with pytest.raises(ValueError, match="expected"):
        book.record("d", "s", paper=1, ours=1, criterion="c", holds=True, expected="maybe")


def test_claims_json_has_every_field(tmp_path):
    book = ledger(tmp_path)
    book.metrics["accuracy"] = torch.tensor([0.5, 0.25])
    book.metrics["nan"] = float("nan")
    book.record("a", "statement", paper="≥ 90%", ours=np.float32(0.5), criterion="ours ≥ 0.9", holds=False,
                expected="not_reproduced", note="too small")
    record = json.loads(book.save(tmp_path / "out").read_text())
    for key in ("slug", "paper", "profile", "seed", "device", "regkit_version", "git_commit", "started",
                "wall_seconds", "metrics", "claims"):
        assert key in record
    assert record["metrics"] == {"accuracy": [0.5, 0.25], "nan": None}
    assert record["claims"][0] == {
        "id": "a", "statement": "statement", "paper": "≥ 90%", "ours": 0.5, "criterion": "ours ≥ 0.9",
        "verdict": "not_reproduced", "expected": "not_reproduced", "note": "too small",
    }
    assert summarize(record) == "0/1 reproduced"


def test_check_raises_only_for_expected_claims_that_failed(tmp_path, capsys):
    book = ledger(tmp_path)
    book.record("ok", "s", paper=1, ours=1, criterion="c", holds=True)
    book.record("known", "s", paper=1, ours=0, criterion="c", holds=False, expected="not_reproduced")
    book.record("later", "s", paper=1, ours=None, criterion="c", holds=None, expected="not_assessed")
    book.check()
    assert "known" in capsys.readouterr().out
    book.record("bad", "s", paper=1, ours=0, criterion="c", holds=False)
    with pytest.raises(AssertionError, match="bad"):
        book.check()


def test_summarize_counts_not_assessed_apart():
    record = {"claims": [{"verdict": "reproduced"}, {"verdict": "not_reproduced"}, {"verdict": "not_assessed"}]}
    assert summarize(record) == "1/2 reproduced, 1 not assessed"
