"""Fixtures of the console foundation's tests: the probe page served (``probe_pages``), a
visitor not signed in, and tokens to sign in with."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

import soredi_sync.ui.pages
from soredi_sync.bootstrap import App
from soredi_sync.services.tokens import create_token, revoke_token
from tests.support.api import api_uow, make_client
from tests.support.ui_probe import probe


@pytest.fixture
def probe_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console serves the probe page (tests/support/ui_probe.py) and no other page."""
    monkeypatch.setattr(soredi_sync.ui.pages, "PAGES", (probe,))


@pytest.fixture
def visitor(synced_app: App, probe_pages: None) -> Iterator[TestClient]:
    """A browser that has not signed in; the token cache off, so a revocation counts at once."""
    with make_client(synced_app, token_cache_seconds=0) as client:
        yield client


@pytest.fixture
def token(synced_app: App) -> Callable[..., str]:
    """``token("audit:read", owners=(...), revoked=False)``: a new token (audit:read if no
    scope is given)."""

    def make(*scopes: str, owners: tuple[str, ...] = (), revoked: bool = False) -> str:
        issued = create_token(api_uow(synced_app), scopes or ("audit:read",), owners)
        if revoked:
            revoke_token(api_uow(synced_app), issued.record.id)
        return issued.token

    return make
