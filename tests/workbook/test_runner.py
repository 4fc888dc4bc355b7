"""The papermill runner and the CLI on toy notebooks in a throwaway workbook."""

import json
import subprocess

import nbformat
import pytest
from _toy_notebooks import BAD, GOOD, make_notebook

from regkit.workbook import runner
from regkit.workbook.claims import load_record
from regkit.workbook.cli import main


@pytest.fixture
def workbook(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    make_notebook(tmp_path / "notebooks" / "good.ipynb", GOOD)
    make_notebook(tmp_path / "notebooks" / "bad.ipynb", BAD)
    return tmp_path


def test_success_moves_results_into_outputs(workbook):
    result = runner.run_notebook(workbook, "good", profile="full", parameters={"value": 7})
    assert result.ok
    out = workbook / "outputs" / "good"
    assert json.loads((out / "claims.json").read_text()) == {"value": 7, "profile": "full"}
    assert (out / "good.ipynb").exists() and (out / "figure.png").exists()
    assert not any((workbook / "scratch" / "tmp").iterdir())


def test_quick_profile_never_writes_outputs(workbook):
    assert runner.run_notebook(workbook, "good", profile="quick").ok
    assert (workbook / "scratch" / "quick" / "good" / "claims.json").exists()
    assert not (workbook / "outputs").exists()


def test_failure_keeps_previous_outputs_and_the_failed_notebook(workbook):
    previous = workbook / "outputs" / "bad"
    previous.mkdir(parents=True)
    (previous / "claims.json").write_text("reference")
    result = runner.run_notebook(workbook, "bad", profile="full")
    assert not result.ok and "RuntimeError" in result.error and "did not reproduce" in result.error
    assert (previous / "claims.json").read_text() == "reference"
    assert sorted(p.name for p in previous.iterdir()) == ["claims.json"]
    failed = nbformat.read(result.failed_notebook, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in failed.cells if c.cell_type == "code" for o in c.outputs)
    assert "FAILED" in runner.summary([result]) and result.failed_notebook in runner.summary([result])


def test_cli_runs_the_others_and_exits_nonzero(workbook, capsys):
    code = main(["--root", str(workbook), "run", "bad", "good"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 of 2 notebook(s) succeeded" in out and "FAILED  bad" in out
    assert (workbook / "outputs" / "good" / "claims.json").exists()
    assert main(["--root", str(workbook), "summary", "bad", "good"]) == 1
    assert main(["--root", str(workbook), "summary", "good"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], "unknown notebook slug"),
        (["run", "good", "-p", "nope=1"], "unknown parameter"),
        (["run", "good", "-p", "output_dir=x"], "set by the runner"),
        (["check", "good", "-p", "novalue"], "name=value"),
    ],
)
def test_bad_requests_fail_before_anything_runs(workbook, capsys, argv, message):
    assert main(["--root", str(workbook), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (workbook / "outputs").exists() and not (workbook / "scratch").exists()


def test_notebook_needs_exactly_one_parameters_cell(workbook):
    nb = nbformat.read(workbook / "notebooks" / "good.ipynb", as_version=4)
    nb.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(nb, workbook / "notebooks" / "good.ipynb")
    with pytest.raises(runner.RunnerError, match="exactly one"):
        runner.validate(workbook, ["good"], {})


def test_parse_parameter():
    assert runner.parse_parameter("lam=2.5") == ("lam", 2.5)
    assert runner.parse_parameter("name=digits") == ("name", "digits")
    assert runner.parse_parameter("sizes=[1, 2]") == ("sizes", [1, 2])


SEEDY = """
import regkit.workbook as wb
run = wb.start("seedy", {"full": {}, "quick": {}}, paper={"title": "t", "arxiv": "0000.00000", "seeds": []},
               profile=profile, seed=seed, device="cpu", output_dir=output_dir)
centre = 5.0 if seed % 2 == 0 else -5.0  # the claim holds for even seeds only
run.record("a", "depends on the seed", paper="p", criterion="x ≥ 0",
           evidence=wb.Evidence.mean("x", [centre - 1, centre, centre + 1], threshold=0, direction=">="))
run.finish()
"""


def test_a_verdict_that_depends_on_the_seed_never_fails_the_run(workbook, capsys):
    make_notebook(workbook / "notebooks" / "seedy.ipynb", SEEDY)
    verdicts = {}
    for seed in (0, 1):
        dest = workbook / "scratch" / f"seed{seed}"
        code = main(
            ["--root", str(workbook), "run", "seedy", "--profile", "quick", "-p", f"seed={seed}", "--dest", str(dest)]
        )
        assert code == 0
        verdicts[seed] = load_record(dest / "seedy" / "claims.json").claims[0].verdict
    assert verdicts == {0: "reproduced", 1: "not_reproduced"}
    assert "finding: a: not_reproduced (expected reproduced)" in capsys.readouterr().out


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_outputs_are_written_only_from_committed_code(workbook):
    make_notebook(workbook / "notebooks" / "seedy.ipynb", SEEDY)
    git(workbook, "init", "-q")
    git(workbook, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    with pytest.raises(runner.RunnerError, match="--allow-dirty"):  # untracked notebooks are uncommitted code
        runner.run_notebook(workbook, "seedy", profile="full")
    assert main(["--root", str(workbook), "run", "seedy"]) == 2 and not (workbook / "outputs").exists()
    git(workbook, "add", "notebooks", "pyproject.toml")
    git(workbook, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code")
    (workbook / "README.md").write_text("generated files do not count")
    result = runner.run_notebook(workbook, "seedy", profile="full")
    assert result.ok
    clean = load_record(workbook / "outputs" / "seedy" / "claims.json").git_commit
    assert clean and not clean.endswith("+dirty")
    assert runner.run_notebook(workbook, "seedy", profile="quick").ok  # scratch: never guarded
    (workbook / "pyproject.toml").write_text("# changed")
    with pytest.raises(runner.RunnerError, match="pyproject.toml"):
        runner.run_notebook(workbook, "seedy", profile="full")
    assert runner.run_notebook(workbook, "seedy", profile="full", allow_dirty=True).ok
    marked = load_record(workbook / "outputs" / "seedy" / "claims.json").git_commit
    assert marked.endswith("+dirty")
