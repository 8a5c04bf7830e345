"""API token use cases on the fakes: issue, verify, revoke, record use."""

from __future__ import annotations

import pytest

from soredi_sync.errors import NotFound
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services.tokens import (
    InvalidTokenRequest,
    TokenVerifier,
    create_token,
    hash_token,
    list_tokens,
    owners_not_in_snapshot,
    revoke_token,
)
from tests.support.factories import registry, unit
from tests.support.fakes import Clock, store


class Ticks:
    """A monotonic clock for the verifier's cache."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_only_the_hash_of_an_issued_token_is_stored(uow: FakeUnitOfWork) -> None:
    issued = create_token(lambda: uow, ["route:read"], owners=["1"], name="ehr")
    with uow:
        stored = uow.tokens.get_by_hash(hash_token(issued.token))
    assert stored == issued.record
    assert stored.scopes == {"route:read"} and stored.owners == {"1"}
    assert issued.token not in uow.tokens.hashes
    assert [t.name for t in list_tokens(lambda: uow)] == ["ehr"]


def test_a_request_for_an_unknown_scope_stores_nothing(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidTokenRequest, match="unknown scope"):
        create_token(lambda: uow, ["route:read", "root"])
    with pytest.raises(InvalidTokenRequest, match="not SOR-IDs"):
        create_token(lambda: uow, ["route:read"], owners=["abc"])
    assert list_tokens(lambda: uow) == [] and uow.commits == 0


def test_a_revoked_token_is_refused_once_the_cache_has_expired(uow: FakeUnitOfWork) -> None:
    ticks = Ticks()
    verifier = TokenVerifier(lambda: uow, ttl=30.0, monotonic=ticks)
    issued = create_token(lambda: uow, ["registry:read"])
    assert verifier.verify(issued.token) == issued.record
    revoked = revoke_token(lambda: uow, issued.record.id)
    assert revoked.revoked
    ticks.now = 10.0
    assert verifier.verify(issued.token) is not None  # trusted for the cache's TTL
    ticks.now = 31.0
    assert verifier.verify(issued.token) is None


def test_unknown_and_malformed_tokens_are_refused_and_revoking_nothing_is_not_found(
    uow: FakeUnitOfWork,
) -> None:
    verifier = TokenVerifier(lambda: uow)
    assert verifier.verify("sst_" + "x" * 43) is None
    assert verifier.verify("Bearer nonsense") is None
    with pytest.raises(NotFound):
        revoke_token(lambda: uow, 42)


def test_use_is_recorded_only_when_flushed(uow: FakeUnitOfWork, clock: Clock) -> None:
    verifier = TokenVerifier(lambda: uow, clock=clock)
    issued = create_token(lambda: uow, ["route:read"])
    used_at = clock.advance(minutes=5)
    verifier.verify(issued.token)
    assert uow.tokens.tokens[issued.record.id].last_used_at is None
    verifier.flush_usage()
    assert uow.tokens.tokens[issued.record.id].last_used_at == used_at


def test_owners_missing_from_the_snapshot_are_named(uow: FakeUnitOfWork) -> None:
    with uow:
        assert owners_not_in_snapshot(uow, ["1"]) == []  # nothing synced yet: no opinion
    store(uow, registry([unit("1"), unit("11", "1")], []))
    with uow:
        assert owners_not_in_snapshot(uow, ["1", "11", "7"]) == ["11", "7"]
