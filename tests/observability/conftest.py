"""Helpers for the metrics and logging tests: reading an exposition, keeping logging global
state from leaking into other tests."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from soredi_sync.observability.logging import NOISY_LOGGERS
from soredi_sync.observability.metrics import Metrics
from tests.api.conftest import (  # noqa: F401 (fixtures)
    empty_app,
    issue,
    synced_app,
    synced_postgres_template,
    synced_sqlite_template,
)
from tests.integration.conftest import manifest, sandbox_dir  # noqa: F401 (fixtures)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    """One sample's value, ``None`` if the exposition does not have it."""
    return samples(text).get((name, frozenset(labels.items())))


def scrape(metrics: Metrics) -> str:
    body, _content_type = metrics.exposition()
    return body.decode()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def metrics() -> Metrics:
    """A registry of the test's own (no process collectors: their numbers move by themselves)."""
    return Metrics(process_collectors=False)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger; put it back as it was after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
