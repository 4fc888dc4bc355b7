"""environment.yml mirrors pyproject.toml; regkit never depends on torchvision."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def names(requirements):
    return {re.split(r"[<>=\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"])
    for extra in ("notebooks", "test"):
        wanted |= names(project["optional-dependencies"][extra])
    env = (ROOT / "environment.yml").read_text().lower()
    missing = [n for n in sorted(wanted) if not re.search(rf"^\s*- {re.escape(n)}\b", env, re.M)]
    assert not missing, f"environment.yml lacks {missing}"


def test_no_torchvision():
    assert "torchvision" not in (ROOT / "pyproject.toml").read_text()
    for path in (ROOT / "regkit").rglob("*.py"):
        assert "torchvision" not in path.read_text(), path
