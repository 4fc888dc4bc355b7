"""Report, README table and compare, from synthetic claims records."""

import json

import matplotlib.pyplot as plt
import pytest

from regkit.workbook.compare import claim_changes, compare
from regkit.workbook.report import README_END, README_START, update_readme, write_report


def record(slug, verdicts, ours=0.5):
    return {
        "slug": slug, "paper": {"title": f"Paper {slug}", "year": 2020, "arxiv": "2007.00151", "seeds": ["000.txt"]},
        "profile": "full", "seed": 0, "device": "cpu", "regkit_version": "0.1.0", "git_commit": "abc",
        "started": "2026-01-01T00:00:00+00:00", "wall_seconds": 12.0, "metrics": {},
        "claims": [
            {"id": f"c{i}", "statement": f"claim {i}", "paper": "qualitative", "ours": ours, "criterion": "x ≥ 1",
             "verdict": v, "expected": v, "note": "too small" if v == "not_reproduced" else ""}
            for i, v in enumerate(verdicts)
        ],
    }


def write_run(folder, rec, color="red"):
    out = folder / rec["slug"]
    out.mkdir(parents=True)
    (out / "claims.json").write_text(json.dumps(rec))
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1], color=color)
    fig.savefig(out / "curve.png", dpi=50)
    plt.close(fig)


@pytest.fixture
def root(tmp_path):
    write_run(tmp_path / "outputs", record("alpha", ["reproduced", "not_reproduced", "not_assessed"]))
    write_run(tmp_path / "outputs", record("beta", ["reproduced"]))
    (tmp_path / "README.md").write_text(f"# title\n\n{README_START}\nold\n{README_END}\n\nrest\n")
    return tmp_path


def test_report_has_a_section_per_method_with_claims_and_figures(root):
    write_report(root)
    md = (root / "outputs" / "REPORT.md").read_text()
    assert "## `alpha` — Paper alpha" in md and "## `beta` — Paper beta" in md
    assert "1/2 reproduced, 1 not assessed" in md and "1/1 reproduced" in md
    assert "![curve](alpha/curve.png)" in md and "*Note: too small*" in md
    html = (root / "outputs" / "index.html").read_text()
    assert "<img src='alpha/curve.png'" in html and "class='not_reproduced'" in html
    readme = (root / "README.md").read_text()
    assert "old" not in readme and "[`alpha`](outputs/alpha/alpha.ipynb)" in readme and readme.endswith("rest\n")


def test_readme_without_markers_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path / "README.md", "table")


def test_claim_changes_flags_verdict_and_value_changes():
    rows = claim_changes(record("a", ["reproduced", "reproduced"]), record("a", ["reproduced", "not_reproduced"], 0.7))
    assert [r["verdict_changed"] for r in rows] == [False, True]
    assert all(r["value_changed"] for r in rows)


def test_compare_writes_side_by_side_sheets(root):
    write_run(root / "fresh", record("alpha", ["reproduced", "reproduced", "not_assessed"]), color="blue")
    text = compare(root / "outputs", root / "fresh", root / "outputs" / "compare")
    assert "not_reproduced → reproduced" in text and "**verdict changed**" in text
    sheet = plt.imread(root / "outputs" / "compare" / "alpha" / "curve.png")
    single = plt.imread(root / "outputs" / "alpha" / "curve.png")
    assert sheet.shape[1] >= 2 * single.shape[1]
    assert (root / "outputs" / "compare" / "COMPARE.md").exists()
