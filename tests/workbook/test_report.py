"""Report, README table and compare, from synthetic claims records."""

import json
import pathlib
import tempfile

import matplotlib.pyplot as plt
import pytest

from regkit.workbook.claims import Ledger, load_record
from regkit.workbook.compare import claim_changes, compare
from regkit.workbook.evidence import Evidence
from regkit.workbook.report import README_END, README_START, update_readme, write_report

tmp_root = pathlib.Path(tempfile.gettempdir())  # not a git checkout: git_commit is None, set below
SAMPLES = {  # per verdict: samples of "x" against the criterion x ≥ 1
    "reproduced": [2.0, 2.1, 1.9],
    "not_reproduced": [0.0, 0.1, -0.1],
    "inconclusive": [0.0, 2.0, 1.0],
}


def record(slug, verdicts, shift=0.0):
    """A claims.json as a notebook's ledger writes it, with one claim per verdict."""
    book = Ledger(
        slug=slug,
        paper={"title": f"Paper {slug}", "year": 2020, "arxiv": "2007.00151", "seeds": ["000.txt"]},
        profile="full",
        seed=0,
        device="cpu",
        root=tmp_root,
    )
    book.expect({f"c{i}": (v, "too small") for i, v in enumerate(verdicts) if v != "reproduced"})
    for i, v in enumerate(verdicts):
        evidence = (
            None
            if v == "not_assessed"
            else Evidence.mean("x", [s + shift for s in SAMPLES[v]], threshold=1, direction=">=")
        )
        book.record(f"c{i}", f"claim {i}", paper="qualitative", criterion="x ≥ 1", evidence=evidence)
    data = book.to_dict()
    data["git_commit"] = "abc"
    return data


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
    write_run(tmp_path / "outputs", record("alpha", ["reproduced", "not_reproduced", "inconclusive", "not_assessed"]))
    write_run(tmp_path / "outputs", record("beta", ["reproduced"]))
    (tmp_path / "README.md").write_text(f"# title\n\n{README_START}\nold\n{README_END}\n\nrest\n")
    return tmp_path


def test_report_has_a_section_per_method_with_claims_and_figures(root):
    write_report(root)
    md = (root / "outputs" / "REPORT.md").read_text()
    assert "## `alpha` — Paper alpha" in md and "## `beta` — Paper beta" in md
    assert "1 reproduced · 1 inconclusive · 1 not reproduced of 4 (1 not assessed)" in md
    assert "1 reproduced · 0 inconclusive · 0 not reproduced of 1" in md
    assert "x: 2 [1.752, 2.248] (n=3) ≥ 1 → reproduced" in md  # estimate [interval] (n) beside the threshold
    assert "![curve](alpha/curve.png)" in md and "*Note: too small*" in md
    html = (root / "outputs" / "index.html").read_text()
    assert "<img src='alpha/curve.png'" in html and "class='not_reproduced'" in html and "class='inconclusive'" in html
    readme = (root / "README.md").read_text()
    assert "old" not in readme and "[`alpha`](outputs/alpha/alpha.ipynb)" in readme and readme.endswith("rest\n")


def test_readme_without_markers_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path / "README.md", "table")


def test_claim_changes_flags_verdict_and_value_changes(tmp_path):
    def load(rec):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(rec))
        return load_record(path)

    rows = claim_changes(
        load(record("a", ["reproduced", "reproduced"])), load(record("a", ["reproduced", "inconclusive"], shift=0.01))
    )
    assert [r["verdict_changed"] for r in rows] == [False, True]
    assert all(r["value_changed"] for r in rows)
    assert [r["unexpected"] for r in rows] == [False, False]


def test_compare_writes_side_by_side_sheets(root):
    fresh = record("alpha", ["reproduced", "not_reproduced", "inconclusive", "not_assessed"])
    fresh["claims"][1] = record("alpha", ["reproduced", "reproduced"])["claims"][1]  # a verdict that moved
    write_run(root / "fresh", fresh, color="blue")
    text = compare(root / "outputs", root / "fresh", root / "outputs" / "compare")
    assert "not_reproduced → reproduced" in text and "**verdict changed**" in text
    sheet = plt.imread(root / "outputs" / "compare" / "alpha" / "curve.png")
    single = plt.imread(root / "outputs" / "alpha" / "curve.png")
    assert sheet.shape[1] >= 2 * single.shape[1]
    assert (root / "outputs" / "compare" / "COMPARE.md").exists()


def test_report_shows_stability_over_held_out_seeds(root):
    from regkit.workbook import stability
    from regkit.workbook.claims import load_record as load

    reference = load(root / "outputs" / "alpha" / "claims.json")
    flipped = json.loads((root / "outputs" / "alpha" / "claims.json").read_text())
    flipped["claims"][0] = record("alpha", ["not_reproduced"])["claims"][0]
    (root / "b1.json").write_text(json.dumps(flipped))
    data = stability.compare_blocks("alpha", "full", reference, {1: load(root / "b1.json"), 2: reference})
    (root / "outputs" / "alpha" / "stability.json").write_text(json.dumps(data))
    write_report(root)
    md = (root / "outputs" / "REPORT.md").read_text()
    assert "unstable (not reproduced 1, reproduced 1) — FLIP reproduced ↔ not reproduced" in md
    assert "stable 2/2" in md and "3/4 stable over 2 blocks, 1 flip(s)" in md
    assert "<span class='flip'>" in (root / "outputs" / "index.html").read_text()


def test_report_renders_each_executed_notebook_to_html(root):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Alpha replication"), nbformat.v4.new_code_cell("value = 2")]
    nbformat.write(nb, root / "outputs" / "alpha" / "alpha.ipynb")
    write_report(root)
    page = (root / "outputs" / "alpha" / "alpha.html").read_text()
    assert "Alpha replication" in page and ">value<" in page
    assert "<a href='alpha/alpha.html'>HTML</a>" in (root / "outputs" / "index.html").read_text()
    assert "[HTML](alpha/alpha.html)" in (root / "outputs" / "REPORT.md").read_text()


def test_method_table_links_code_and_tests_from_the_registry(tmp_path):
    write_run(tmp_path / "outputs", record("elr", ["reproduced"]))
    (tmp_path / "README.md").write_text(f"{README_START}\n{README_END}\n")
    write_report(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "[`elr.py`](regkit/losses/elr.py)" in readme and "[`test_elr.py`](tests/losses/test_elr.py)" in readme
    assert "[`elr.py`](../regkit/losses/elr.py)" in (tmp_path / "outputs" / "REPORT.md").read_text()
