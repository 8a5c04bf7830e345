"""The shared fixtures, registered as plugins for every test (see tests/README.md): each module
of ``tests/fixtures`` holds the fixtures of one concern."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.cli",
    "tests.fixtures.sandbox",
    "tests.fixtures.app",
    "tests.fixtures.api",
    "tests.fixtures.ui",
]
