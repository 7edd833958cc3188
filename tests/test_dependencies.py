"""Every module the package imports is the standard library's, the package's own or a declared
runtime dependency's, and every declared dependency is imported: a fresh ``pip install
azml-compat`` has all it needs and nothing it does not use. (``yaml`` was imported while only
the tests declared PyYAML: a fresh install without it failed at ``-o yaml``.)"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"azml_compat", "azureml"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normal(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in project["dependencies"]}


def imported() -> dict[str, set[str]]:
    """Top-level module name -> the files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for package in OWN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(
                        str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_a_declared_dependency():
    modules = {m: files for m, files in imported().items()
               if m not in sys.stdlib_module_names and m not in OWN and m != "__future__"}
    by_module = packages_distributions()
    missing = {m: sorted(files) for m, files in modules.items()
               if not {_normal(d) for d in by_module.get(m, [m])} & declared()}
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_every_declared_dependency_is_imported():
    by_module = packages_distributions()
    used = {_normal(d) for m in imported() for d in by_module.get(m, [])}
    assert declared() <= used, f"declared but never imported: {declared() - used}"
