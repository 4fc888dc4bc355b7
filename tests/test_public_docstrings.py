"""Every public definition of the method library has a docstring (issue 11, Deliver 5).

Public: a name in a module's ``__all__`` or imported into a package ``__init__`` of
``regkit`` (outside ``regkit.workbook``, which has its own conventions). Classes count with
their public methods defined in the class body (``__init__`` is covered by the class docstring
when it has none of its own; ``forward`` and other ``nn.Module`` overrides are documented by
the class).
"""

import importlib
import inspect
import pkgutil

import regkit

PACKAGES = sorted(
    m.name for m in pkgutil.walk_packages(regkit.__path__, "regkit.") if not m.name.startswith("regkit.workbook")
)
_INHERITED_CONTRACT = {"forward", "extra_repr", "step", "zero_grad", "state_dict", "load_state_dict"}


def _public(module):
    names = set(getattr(module, "__all__", []))
    if module.__name__.endswith("__init__") or hasattr(module, "__path__"):
        names |= {
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", "").startswith("regkit.") and not inspect.ismodule(v)
        }
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def missing_docstrings() -> list[str]:
    missing = set()
    for name in ["regkit", *PACKAGES]:
        module = importlib.import_module(name)
        for value in _public(module).values():
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            where = f"{value.__module__}.{value.__qualname__}"
            if not inspect.getdoc(value):
                missing.add(where)
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if attr.startswith("_") or attr in _INHERITED_CONTRACT:
                        continue
                    func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    if inspect.isfunction(func) and not func.__doc__:
                        missing.add(f"{where}.{attr}")
    return sorted(missing)


def test_every_public_definition_has_a_docstring():
    missing = missing_docstrings()
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)
