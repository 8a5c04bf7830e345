"""Fixtures for end-to-end tests: a generated sandbox and an app on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import RetrySettings, Settings
from soredi_sync.sandbox.generate import Manifest, generate

SANDBOX_SEED = 11


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sandbox, day 0..2, generated once per test session."""
    directory = tmp_path_factory.mktemp("sandbox")
    generate(directory, profile="tiny", seed=SANDBOX_SEED, days=2)
    return directory


@pytest.fixture(scope="session")
def manifest(sandbox_dir: Path) -> Manifest:
    return Manifest.load(sandbox_dir)


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Fast retries: the policy is under test, not the patience of the test run.
    retry = RetrySettings(attempts=3, initial_wait=0.01, max_wait=0.05)
    return Settings(database_url=database_url, retry=retry, **overrides)


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    with bootstrap(make_settings(database_url)) as application:
        yield application
