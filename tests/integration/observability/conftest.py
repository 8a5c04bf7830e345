"""Fixtures for the metrics and logging tests: a registry of the test's own, and logging
global state kept from leaking into other tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from soredi_sync.observability.logging import NOISY_LOGGERS
from soredi_sync.observability.metrics import Metrics


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
