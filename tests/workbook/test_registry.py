"""The slug registry: every registered path exists, every notebook is registered, the paper matches."""

import pathlib
import re

import nbformat
import pytest

from regkit.workbook.registry import METHODS, method

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_notebook_is_registered():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(METHODS)


@pytest.mark.parametrize("slug", sorted(METHODS))
def test_registered_paths_exist_and_name_the_notebook(slug):
    m = METHODS[slug]
    assert (ROOT / m.notebook).is_file()
    for path in (*m.modules, *m.tests):
        assert (ROOT / path).is_file(), f"{slug}: {path} does not exist"
    for path in m.modules:  # the code points to its notebook
        assert m.notebook in (ROOT / path).read_text(), f"{path}'s docstring should name {m.notebook}"
    for path in m.modules:  # tests mirror the library: regkit/<family>/<module>.py -> tests/<family>/test_<module>.py
        family, module = pathlib.PurePosixPath(path).parts[-2:]
        assert f"tests/{family}/test_{module}" in m.tests, f"{slug}: tests/{family}/test_{module} is not registered"


@pytest.mark.parametrize("slug", sorted(METHODS))
def test_the_notebook_opens_with_the_registered_paper(slug):
    first = nbformat.read(ROOT / METHODS[slug].notebook, as_version=4).cells[0].source
    paper = METHODS[slug].paper
    assert f"arXiv:{paper.arxiv}" in first
    for seed in paper.seeds:
        assert seed in first
    assert re.fullmatch(r"\d{4}\.\d{4,5}", paper.arxiv)


def test_unknown_slug_names_the_known_ones():
    with pytest.raises(ValueError, match="known: .*'elr'"):
        method("elrr")
