"""pyproject.toml declares what the code imports, and nothing it does not use."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.support.paths import REPO_ROOT

CHECKOUT = REPO_ROOT
PROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]

# Used without an import statement of ours: uvicorn picks httptools and uvloop ("auto"),
# SQLAlchemy loads psycopg for postgresql+psycopg:// URLs, Starlette parses the console's
# forms with python-multipart.
USED_WITHOUT_IMPORT = {"httptools", "uvloop", "psycopg", "python-multipart"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    bare = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def _imported_modules() -> set[str]:
    """Top-level names of every module imported by the package and the migrations."""
    names = set()
    for folder in ("soredi_sync", "migrations"):
        for path in (CHECKOUT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "soredi_sync"}


def _declared(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {_name(r) for r in requirements}


def test_every_third_party_import_is_declared_as_a_dependency_or_extra() -> None:
    distributions = packages_distributions()
    declared = _declared("postgres", "plot")
    undeclared = {
        module: distributions.get(module)
        for module in _imported_modules()
        if not {_name(d) for d in distributions.get(module, [module])} & declared
    }
    assert not undeclared


def test_every_declared_dependency_is_imported_or_used_on_purpose() -> None:
    distributions = packages_distributions()
    imported = {_name(d) for m in _imported_modules() for d in distributions.get(m, [m])}
    unused = _declared("postgres", "plot") - imported - USED_WITHOUT_IMPORT
    assert not unused


def test_the_postgresql_driver_and_matplotlib_are_only_in_extras() -> None:
    core = _declared()
    assert not core & {"psycopg", "matplotlib"}
    assert _declared("postgres") - core == {"psycopg"}
    assert _declared("plot") - core == {"matplotlib"}


def test_dev_tools_are_a_dependency_group_not_an_extra() -> None:
    pyproject = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    dev = {_name(r) for r in pyproject["dependency-groups"]["dev"]}
    assert {"ruff", "mypy"} <= dev
    assert not dev & {_name(r) for r in PROJECT["optional-dependencies"]["test"]}
