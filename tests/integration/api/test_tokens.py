"""Tokens: shown once, stored as a hash, listed, revoked, and verified through a short cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soredi_sync.bootstrap import App
from soredi_sync.db.models import ApiToken
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.tokens import (
    InvalidTokenRequest,
    TokenVerifier,
    create_token,
    list_tokens,
    revoke_token,
)
from tests.support.api import World, bearer, make_client


def _stored_rows(app: App) -> list[ApiToken]:
    with app.session_factory() as session:
        return list(session.scalars(select(ApiToken)))


@pytest.mark.usefixtures("synced_app")
class TestTokenCommands:
    def test_create_prints_the_token_once_and_stores_only_its_sha256(
        self, cli, synced_app: App, world: World
    ) -> None:
        result = cli(
            "token", "create", "--scope", "route:read,registry:read",
            "--owner", world.owner_in, "--name", "region-x",
        )  # fmt: skip
        token = result.stdout.strip()
        assert token.startswith("sst_") and len(token) == 4 + 43
        assert "not shown again" in result.stderr and token not in result.stderr
        (row,) = _stored_rows(synced_app)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored = [str(getattr(row, c.name)) for c in ApiToken.__table__.columns]
        assert not any(token in value for value in stored)
        assert (row.name, row.scopes, row.owners) == (
            "region-x",
            ["registry:read", "route:read"],
            [world.owner_in],
        )
        listed = cli("token", "list", "--json").output
        assert token not in listed and row.token_hash not in listed
        assert json.loads(listed)[0]["name"] == "region-x"

    def test_two_tokens_are_never_the_same(self, cli) -> None:
        first = cli("token", "create", "--scope", "route:read").stdout
        second = cli("token", "create", "--scope", "route:read").stdout
        assert first != second

    def test_the_created_token_opens_the_api(self, cli, client: TestClient) -> None:
        token = cli("token", "create", "--scope", "registry:read").stdout.strip()
        assert client.get("/v1/snapshots/current", headers=bearer(token)).status_code == 200

    @pytest.mark.parametrize(
        "args",
        [["--scope", "root"], ["--scope", " , "], ["--scope", "route:read", "--owner", "region-1"]],
        ids=["unknown-scope", "no-scope", "owner-not-a-sor-id"],
    )
    def test_create_refuses_what_it_cannot_issue(self, cli, args: list[str]) -> None:
        cli("token", "create", *args, expect=2)

    def test_create_warns_about_an_owner_that_is_no_institution_owner(
        self, cli, world: World
    ) -> None:
        result = cli("token", "create", "--scope", "route:read", "--owner", world.unit_in)
        if world.unit_in != world.owner_in:
            assert "not institution owners" in result.stderr
        result = cli("token", "create", "--scope", "route:read", "--owner", "123")
        assert "123 are not institution owners" in result.stderr

    def test_list_shows_scopes_owners_and_revocation(self, cli, monkeypatch) -> None:
        monkeypatch.setenv("COLUMNS", "200")
        cli("token", "create", "--scope", "route:read", "--name", "gw")
        cli("token", "revoke", "1")
        table = cli("token", "list").output
        assert "gw" in table and "route:read" in table and "all" in table
        assert json.loads(cli("token", "list", "--json").output)[0]["revoked"] is True

    def test_revoke_says_when_running_servers_stop_accepting_it(self, cli) -> None:
        cli("token", "create", "--scope", "route:read")
        assert "within 30 s" in cli("token", "revoke", "1").output

    def test_revoking_an_unknown_token_exits_4(self, cli) -> None:
        assert "no token '99'" in cli("token", "revoke", "99", expect=4).output


class TestCreateToken:
    def test_a_token_needs_a_known_scope(self, synced_app: App) -> None:
        def uow() -> UnitOfWork:
            return synced_app.uow()

        with pytest.raises(InvalidTokenRequest, match="unknown scope"):
            create_token(uow, ["route:write"])
        with pytest.raises(InvalidTokenRequest, match="at most 100"):
            create_token(uow, ["route:read"], name="n" * 101)
        assert list_tokens(uow) == []


class _CountingUow:
    """An API unit-of-work factory that counts how often the database is asked."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        return self.app.uow()


class TestTokenVerifier:
    def test_a_verified_token_is_served_from_memory_until_the_ttl_runs_out(
        self, synced_app: App
    ) -> None:
        uow = _CountingUow(synced_app)
        token = create_token(uow, ["route:read"]).token
        clock = [1000.0]
        verifier = TokenVerifier(uow, ttl=30, monotonic=lambda: clock[0])
        opened = uow.opened
        for _ in range(5):
            assert verifier.verify(token) is not None
        assert uow.opened == opened + 1
        clock[0] += 31
        assert verifier.verify(token) is not None
        assert uow.opened == opened + 2

    def test_revocation_takes_effect_when_the_cached_entry_expires(self, synced_app: App) -> None:
        uow = _CountingUow(synced_app)
        issued = create_token(uow, ["route:read"])
        clock = [0.0]
        verifier = TokenVerifier(uow, ttl=30, monotonic=lambda: clock[0])
        assert verifier.verify(issued.token) is not None
        revoke_token(uow, issued.record.id)
        clock[0] += 29
        assert verifier.verify(issued.token) is not None, "still trusted within the TTL"
        clock[0] += 2
        assert verifier.verify(issued.token) is None

    def test_unknown_tokens_are_cached_too_and_the_cache_is_bounded(self, synced_app: App) -> None:
        uow = _CountingUow(synced_app)
        verifier = TokenVerifier(uow, ttl=30, max_entries=3)
        for i in range(10):
            assert verifier.verify(f"sst_unknown{i}") is None
        opened = uow.opened
        assert verifier.verify("sst_unknown9") is None
        assert uow.opened == opened
        assert verifier.verify("not-ours") is None and uow.opened == opened

    def test_last_use_is_written_in_batches_not_per_request(self, synced_app: App) -> None:
        uow = _CountingUow(synced_app)
        issued = create_token(uow, ["route:read"])
        used_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        verifier = TokenVerifier(uow, clock=lambda: used_at)
        for _ in range(3):
            verifier.verify(issued.token)
        assert list_tokens(uow)[0].last_used_at is None
        verifier.flush_usage()
        assert list_tokens(uow)[0].last_used_at == used_at

    def test_the_api_refuses_a_revoked_token_once_its_cache_is_cleared(
        self, synced_app: App, issue: Callable[..., str]
    ) -> None:
        token = issue("registry:read")
        with make_client(synced_app) as client:
            assert client.get("/v1/snapshots/current", headers=bearer(token)).status_code == 200
            revoke_token(lambda: synced_app.uow(), 1)
            assert client.get("/v1/snapshots/current", headers=bearer(token)).status_code == 200
            client.app.state.verifier.invalidate()  # type: ignore[attr-defined]
            assert client.get("/v1/snapshots/current", headers=bearer(token)).status_code == 401

    def test_token_records_carry_aware_times(self, synced_app: App) -> None:
        def uow() -> UnitOfWork:
            return synced_app.uow()

        issued = create_token(uow, ["route:read"])
        revoked = revoke_token(uow, issued.record.id)
        assert revoked.revoked_at is not None
        assert abs(revoked.revoked_at - datetime.now(UTC)) < timedelta(minutes=1)
        again = revoke_token(uow, issued.record.id)
        assert again.revoked_at == revoked.revoked_at, "revoking twice keeps the first time"
