"""The method library never imports the workbook, progress bars or plotting (issue 11, Deliver 4).

Every module under ``regkit/`` outside ``regkit/workbook/`` is parsed (AST, so imports inside
functions and ``try`` blocks count too) and may not import ``regkit.workbook``, ``tqdm``,
``matplotlib`` or ``seaborn``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "regkit"
FORBIDDEN = ("regkit.workbook", "tqdm", "matplotlib", "seaborn")
METHOD_FILES = sorted(p for p in ROOT.rglob("*.py") if "workbook" not in p.relative_to(ROOT).parts)


def _imports(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            names += [("workbook" if node.module and node.module.startswith("workbook") else "")]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


def _forbidden(name: str) -> bool:
    return name == "workbook" or any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_the_scan_sees_the_method_modules():
    assert len(METHOD_FILES) > 20 and ROOT / "ot" / "monge_gap.py" in METHOD_FILES


@pytest.mark.parametrize("path", METHOD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_method_module_imports_no_workbook_tqdm_or_plotting(path):
    bad = [name for name in _imports(path.read_text()) if _forbidden(name)]
    assert not bad, f"{path.relative_to(ROOT.parent)} imports {bad}"


def test_the_rule_catches_each_forbidden_import():
    for source in (
        "import tqdm",
        "from tqdm.auto import tqdm",
        "import matplotlib.pyplot as plt",
        "import seaborn",
        "from regkit.workbook import figures",
        "from regkit import workbook",
        "import importlib; importlib.import_module('tqdm')",
    ):
        assert any(_forbidden(n) for n in _imports(source)), source
    assert not any(_forbidden(n) for n in _imports("import torch\nfrom regkit.ot import sinkhorn"))
