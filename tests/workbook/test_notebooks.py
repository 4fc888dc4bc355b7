"""The notebook contract on every committed notebook (nbval executes them separately)."""

import pathlib
import re

import nbformat
import pytest

from regkit.workbook.runner import RUNNER_PARAMETERS, notebook_parameters

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exactly_one_parameters_cell_with_the_runner_parameters(path):
    params = notebook_parameters(path)  # raises unless exactly one tagged cell
    assert set(RUNNER_PARAMETERS) <= set(params)
    assert params["profile"] == "full" and params["seed"] == 0 and params["device"] == "auto"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_the_paper_and_the_claim(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", first.source), "cite the arXiv id"
    assert re.search(r"\d{3}_[0-9a-f]{16}\.txt", first.source), "name the seed file"
    assert "Claim" in first.source and "Scaled down" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ends_with_the_claims_check(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[-1].cell_type == "code" and "run.finish()" in nb.cells[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_are_recorded_from_evidence(path):
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "**EXPECTED" not in code and "holds=" not in code, "record claims from wb.Evidence, not from booleans"
    assert code.count(".expect(") <= 1, "declare the expectations once"
    assert any(call in code for call in ("Evidence.", "E.", "paired_evidence(")), "record evidence, not verdicts"
