"""The packaging tests see no operator configuration: no SOREDI_* variable from outside."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SOREDI_"):
            monkeypatch.delenv(name)
