"""What a subscription gets: its filter, checked when registered and matched against changes.

Fields ``glns``, ``owners`` (SOR-IDs of institution owners), ``message_types``, ``kinds``
(added/removed/changed) and ``entities`` (unit/gln/capability) are ANDed, the values of one
field ORed; an empty field matches everything. ``glns`` matches the change's GLN (a GLN or
capability change; a unit change when the unit carries that GLN itself). ``message_types``
matches capability changes of those types only (units and GLNs have no message type).
``owners`` matches when the change concerns one of those owners (who owns a change:
:class:`soredi_sync.services.webhooks.enqueue.OwnerResolver`); a change whose owner cannot be
told matches no owner filter (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from soredi_sync.ports.records import ChangeRecord
from soredi_sync.services.webhooks.errors import InvalidWebhook

FILTER_FIELDS = ("glns", "owners", "message_types", "kinds", "entities")
KINDS = ("added", "removed", "changed")
ENTITIES = ("unit", "gln", "capability")

_GLN = re.compile(r"\d{13}")
_SOR_ID = re.compile(r"\d{1,20}")
_MESSAGE_TYPE = re.compile(r"[A-Z0-9]{1,40}")


@dataclass(frozen=True, slots=True)
class WebhookFilter:
    """What a subscription gets. Fields are ANDed, values ORed; empty matches everything."""

    glns: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    message_types: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        *,
        glns: Iterable[str] = (),
        owners: Iterable[str] = (),
        message_types: Iterable[str] = (),
        kinds: Iterable[str] = (),
        entities: Iterable[str] = (),
    ) -> WebhookFilter:
        """Normalised and checked values.

        :raises InvalidWebhook: a value that is no GLN, SOR-ID, message type, kind or entity
        """
        built = cls(
            glns=_values(glns),
            owners=_values(owners),
            message_types=frozenset(v.upper() for v in _values(message_types)),
            kinds=frozenset(v.lower() for v in _values(kinds)),
            entities=frozenset(v.lower() for v in _values(entities)),
        )
        _check(built.glns, _GLN.fullmatch, "GLN (13 digits)")
        _check(built.owners, _SOR_ID.fullmatch, "SOR-ID of an institution owner")
        _check(built.message_types, _MESSAGE_TYPE.fullmatch, "message type such as FDIS91")
        _check(built.kinds, lambda v: v in KINDS, f"kind ({', '.join(KINDS)})")
        _check(built.entities, lambda v: v in ENTITIES, f"entity ({', '.join(ENTITIES)})")
        return built

    @classmethod
    def of(cls, stored: Mapping[str, Iterable[str]]) -> WebhookFilter:
        return cls(**{f: frozenset(stored.get(f, ())) for f in FILTER_FIELDS})

    def as_dict(self) -> dict[str, list[str]]:
        return {f: sorted(getattr(self, f)) for f in FILTER_FIELDS}

    @property
    def needs_owners(self) -> bool:
        return bool(self.owners)

    def matches(self, change: ChangeRecord, owners: Callable[[ChangeRecord], set[str]]) -> bool:
        """``owners`` tells the institution owners of a change; asked only if needed."""
        if self.entities and change.entity not in self.entities:
            return False
        if self.kinds and change.kind not in self.kinds:
            return False
        if self.glns and change.gln not in self.glns:
            return False
        if self.message_types and (
            change.entity != "capability" or _message_type(change) not in self.message_types
        ):
            return False
        return not self.owners or bool(owners(change) & self.owners)


def _values(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip() for v in values if v and v.strip())


def _check(values: Iterable[str], ok: Callable[[str], object], what: str) -> None:
    bad = sorted(v for v in values if not ok(v))
    if bad:
        raise InvalidWebhook(f"{', '.join(map(repr, bad))} is not a {what}")


def _message_type(change: ChangeRecord) -> str:
    return change.key.partition(":")[2]
