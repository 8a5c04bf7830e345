"""Use cases of API access: issue, list and revoke bearer tokens; verify one on each request.

A token is ``sst_`` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored.
Tokens are high-entropy random strings, not passwords, so an unsalted fast hash is right: a salt
or a slow KDF guards low-entropy secrets against dictionary attacks, which do not exist for 256
random bits, and a fast deterministic hash lets a request find its token by one index look-up.

Verification is cached in memory (hash → record) for ``ttl`` seconds, so a revocation takes
effect in a running server within that time (30 s by default). Never log a token: log its id or
name.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from soredi_sync.domain.model import UnitKind
from soredi_sync.domain.ownership import gln_owners, may_see
from soredi_sync.domain.routing import Address, RoutingIndex
from soredi_sync.errors import NotFound, SorediError
from soredi_sync.ports.records import TokenRecord
from soredi_sync.ports.storage import UnitOfWork

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sst_"
_TOKEN_BYTES = 32
_SOR_ID = re.compile(r"\d{1,20}")
MAX_NAME_LENGTH = 100


class Scope(enum.StrEnum):
    """What a token may do (stored by value)."""

    ROUTE_READ = "route:read"  # routing decisions
    REGISTRY_READ = "registry:read"  # units, GLNs, the change feed, snapshots
    AUDIT_READ = "audit:read"  # audit findings (later)
    PLAN_WRITE = "plan:write"  # registration change plans (later)
    WEBHOOK_ADMIN = "webhook:admin"  # change subscriptions: register, list, remove


class InvalidTokenRequest(SorediError, ValueError):
    """A token cannot be issued as asked (unknown scope, bad owner SOR-ID, bad name)."""


class OutsideOwners(SorediError, PermissionError):
    """An owner-restricted token asked about data of another owner (the API answers 403)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A newly created token: ``token`` is shown to the operator once and never stored."""

    token: str
    record: TokenRecord


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


# -- owner restrictions: the rule is domain/ownership.py's --------------------------------------


def may_read_owner(token: TokenRecord, owner_sor_id: str | None) -> bool:
    """Whether ``token`` may see data of the institution owner ``owner_sor_id``.

    A token without owners may see every owner; a restricted one only its own, and never data
    whose owner is unknown.
    """
    return may_see(token.owners, (owner_sor_id,))


def may_read_owners(token: TokenRecord, owners: Iterable[str | None]) -> bool:
    """Whether ``token`` may see data that belongs to ``owners`` (any one of them will do)."""
    return may_see(token.owners, owners)


def may_act_for(token: TokenRecord, owners: Iterable[str]) -> bool:
    """Whether ``token`` may act for every one of ``owners`` (a plan covering them)."""
    return not token.owners or set(owners) <= token.owners


def may_route_to(token: TokenRecord, index: RoutingIndex, address: Address) -> bool:
    """Whether ``token`` may have a decision for a message to ``address``.

    An owner-restricted token gets decisions only where the address unit belongs to one of its
    owners and the address GLN (if any) belongs to one of them. An address that is not in the
    snapshot belongs to no owner, so a restricted token gets no decision for it.
    """
    if not token.owners:
        return True
    unit = index.registry.units.get(address.sor_id) if address.sor_id else None
    if unit is None or not may_read_owner(token, unit.owner_sor_id):
        return False
    return address.gln is None or may_read_owners(token, _gln_owners(index, address.gln))


def _gln_owners(index: RoutingIndex, gln: str) -> set[str]:
    units = index.registry.units
    record = index.registry.glns.get(gln)

    def owner_of_unit(sor_id: str) -> str | None:
        unit = units.get(sor_id)
        return unit.owner_sor_id if unit else None

    return gln_owners(
        index.owners_by_gln.get(gln, ()), record.owner_sor_id if record else None, owner_of_unit
    )


# -- issuing and verifying ------------------------------------------------------------------------


UowFactory = Callable[[], UnitOfWork]


def create_token(
    uow_factory: UowFactory,
    scopes: Iterable[str],
    owners: Iterable[str] = (),
    name: str | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a token with ``scopes``, optionally restricted to institution ``owners``.

    :raises InvalidTokenRequest: no scope, an unknown scope, a malformed owner SOR-ID or name
    """
    scope_set = {s.strip() for s in scopes if s.strip()}
    if not scope_set:
        raise InvalidTokenRequest("a token needs at least one scope")
    known = {s.value for s in Scope}
    unknown = sorted(scope_set - known)
    if unknown:
        raise InvalidTokenRequest(
            f"unknown scope(s) {', '.join(map(repr, unknown))}; known: {', '.join(Scope)}"
        )
    owner_set = {o.strip() for o in owners if o.strip()}
    bad = sorted(o for o in owner_set if not _SOR_ID.fullmatch(o))
    if bad:
        raise InvalidTokenRequest(f"owner(s) {', '.join(map(repr, bad))} are not SOR-IDs")
    token = new_token()
    digest = hash_token(token)
    # The default name is a fingerprint of the hash: it identifies the token in lists and logs
    # and reveals nothing about the token itself.
    name = (name or "").strip() or f"token-{digest[:8]}"
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTokenRequest(f"a token name has at most {MAX_NAME_LENGTH} characters")
    with uow_factory() as uow:
        record = uow.tokens.add(
            digest, name, sorted(scope_set), sorted(owner_set), now or datetime.now(UTC)
        )
        uow.commit()
    logger.info("Created API token %d (%s) with scopes %s", record.id, name, sorted(scope_set))
    return IssuedToken(token, record)


def list_tokens(uow_factory: UowFactory) -> list[TokenRecord]:
    with uow_factory() as uow:
        return uow.tokens.list()


def revoke_token(
    uow_factory: UowFactory, token_id: int, now: datetime | None = None
) -> TokenRecord:
    """Revoke a token. Running servers stop accepting it within their cache TTL.

    :raises NotFound: no token has this id
    """
    with uow_factory() as uow:
        record = uow.tokens.revoke(token_id, now or datetime.now(UTC))
        if record is None:
            raise NotFound("token", str(token_id))
        uow.commit()
    logger.info("Revoked API token %d (%s)", record.id, record.name)
    return record


class TokenVerifier:
    """Bearer token → token record, cached in memory for ``ttl`` seconds.

    Unknown tokens are cached too (as ``None``), so a client hammering with a wrong token costs
    one query per TTL, not one per request. The cache is bounded: when it is full, expired
    entries go, and if that is not enough, everything goes.

    ``last_used_at`` is collected in memory and written by :meth:`flush_usage` (called by the
    API's background flusher), so verifying never writes to the database on the request path.

    :param ttl: seconds a verification is trusted; revocation takes effect within this time
    """

    def __init__(
        self,
        uow_factory: UowFactory,
        ttl: float = 30.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow_factory = uow_factory
        self._ttl = ttl
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._clock = clock
        self._cache: dict[str, tuple[float, TokenRecord | None]] = {}
        self._used: dict[int, datetime] = {}
        self._lock = threading.Lock()

    @property
    def ttl(self) -> float:
        return self._ttl

    def verify(self, token: str) -> TokenRecord | None:
        """The live (not revoked) record of ``token``, or None when it is unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        return self.verify_hash(hash_token(token))

    def verify_hash(self, digest: str) -> TokenRecord | None:
        """:meth:`verify` by the token's hash (the web console's session holds the hash, never
        the token)."""
        now = self._monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            with self._uow_factory() as uow:
                record = uow.tokens.get_by_hash(digest)
            self._remember(digest, now + self._ttl, record)
        if record is None or record.revoked:
            return None
        # Unlocked on purpose: a use recorded while flush_usage swaps the dict can be lost, and
        # last_used_at is then one use late; a lock here would cost every request.
        self._used[record.id] = self._clock()
        return record

    def _remember(self, digest: str, expires: float, record: TokenRecord | None) -> None:
        with self._lock:
            if len(self._cache) >= self._max_entries:
                now = self._monotonic()
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= self._max_entries:
                    self._cache = {}
            self._cache[digest] = (expires, record)

    def invalidate(self) -> None:
        """Forget every cached verification (the next request of each token reads the DB)."""
        with self._lock:
            self._cache = {}

    def flush_usage(self) -> None:
        """Write the collected ``last_used_at`` times in one transaction."""
        with self._lock:
            used, self._used = self._used, {}
        if not used:
            return
        with self._uow_factory() as uow:
            uow.tokens.mark_used(used)
            uow.commit()


def owners_not_in_snapshot(uow: UnitOfWork, owners: Iterable[str]) -> list[str]:
    """Which of ``owners`` are not institution owners in the current snapshot.

    Empty when nothing has been synced yet: a token may be made before the first sync.
    """
    current = uow.registry.current_snapshot()
    if current is None:
        return []
    missing = []
    for sor_id in sorted(set(owners)):
        unit = uow.registry.get_unit(sor_id, current.id)
        if unit is None or unit.kind is not UnitKind.INSTITUTION_OWNER:
            missing.append(sor_id)
    return missing
