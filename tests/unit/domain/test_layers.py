"""The domain layer stays pure: no database, network, retry or scheduler imports."""

from __future__ import annotations

import ast
from pathlib import Path

import soredi_sync.domain

FORBIDDEN = {
    "sqlalchemy",
    "httpx",
    "zeep",
    "tenacity",
    "apscheduler",
    "alembic",
    "lxml",
    "requests",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


class TestLayers:
    def test_domain_modules_import_no_infrastructure(self) -> None:
        domain_dir = Path(soredi_sync.domain.__file__).parent
        offenders = {
            str(path.relative_to(domain_dir)): sorted(_imports(path) & FORBIDDEN)
            for path in domain_dir.rglob("*.py")  # domain/routing/ is a package
        }
        assert {k: v for k, v in offenders.items() if v} == {}

    def test_the_domain_package_is_not_empty(self) -> None:
        # Guards the test above against silently checking nothing.
        assert len(list(Path(soredi_sync.domain.__file__).parent.glob("*.py"))) >= 4
