"""A GLN's message types in the sandbox: the rows it starts with, adding and ending rows, and
CareCommunication adoption (when a GLN is built, and night by night).

Every function works on :class:`~soredi_sync.sandbox.mutable.MutableGln` records and draws from
the ``rng`` it is given, in a fixed order.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import date, timedelta

from soredi_sync.sandbox.catalog import FHIR_START, TYPE_POOLS, past_date
from soredi_sync.sandbox.mutable import MutableGln
from soredi_sync.sandbox.vocabulary import Vocabulary


def add_type(
    voc: Vocabulary, rng: random.Random, record: MutableGln, code: str, since: date
) -> None:
    """Advertise ``code`` on ``record`` from ``since`` (a version drawn), unless it already is."""
    if code in voc and code not in record.types:
        record.types[code] = (voc.pick_version(code, rng), since)
        if record.ended:
            # A re-registration replaces the old ended row: one row per GLN and type keeps
            # the map unambiguous for parsers.
            record.ended = [row for row in record.ended if row[0] != code]


def end_type(record: MutableGln, code: str, last_day: date) -> None:
    """Stop advertising ``code``: its row ends on ``last_day``."""
    entry = record.types.pop(code, None)
    if entry is not None:
        edi_id, since = entry
        # A type removed on the day it was added never counted: it leaves no row, since a
        # row ending before it starts (or on the snapshot date) would read as current.
        if last_day >= since:
            record.ended.append((code, edi_id, since, last_day))


def initial_types(
    voc: Vocabulary,
    rng: random.Random,
    record: MutableGln,
    base_date: date,
    allow_fhir: bool = True,
) -> None:
    """The types a new GLN advertises: its system's legacy set, then from its kind's pools."""
    system = record.system
    primary, secondary, (low, high) = TYPE_POOLS[record.category]
    count = rng.randint(low, high)
    since = record.from_date
    core = list(voc.legacy_set(system.legacy))
    other = "oioxml" if system.legacy == "edifact" else "edifact"
    # Some receivers take both legacy syntaxes (a system change left the old ones behind).
    if rng.random() < (0.2 if system.legacy == "edifact" else 0.1):
        core += voc.legacy_set(other)
    for code in core:
        add_type(voc, rng, record, code, since)
    picks = [c for c in primary if c in voc]
    rng.shuffle(picks)
    extra = [c for c in secondary if c in voc]
    rng.shuffle(extra)
    for code in picks + extra:
        if len(record.types) >= count:
            break
        add_type(voc, rng, record, code, past_date(rng, since, base_date))
    if allow_fhir and rng.random() < system.initial_fhir:
        adopted = past_date(rng, FHIR_START, base_date - timedelta(days=1))
        adopt(voc, rng, record, max(adopted, since), drop_share=0.6)


def adopt(
    voc: Vocabulary, rng: random.Random, record: MutableGln, since: date, drop_share: float
) -> None:
    """Advertise CareCommunication; with ``drop_share`` also remove the obsolete types."""
    add_type(voc, rng, record, voc.fhir_correspondence, since)
    add_type(voc, rng, record, voc.fhir_ack, since)
    if record.category in ("municipal", "hospital") and rng.random() < 0.5:
        add_type(voc, rng, record, voc.fhir_notification, since)
    if rng.random() < drop_share:
        drop_legacy(voc, record, since - timedelta(days=1))


def drop_legacy(voc: Vocabulary, record: MutableGln, last_day: date) -> None:
    """End the legacy correspondence types and their attachment types on ``last_day``."""
    # Attachments go together with the legacy correspondence types: a GLN never keeps a
    # legacy correspondence type without its BIN type once it has FDIS91.
    for code in voc.legacy_correspondence + voc.attachments:
        end_type(record, code, last_day)


def make_clean_legacy(voc: Vocabulary, rng: random.Random, record: MutableGln) -> None:
    """Only legacy correspondence with attachments and receipts: no capability defect."""
    for code in voc.fhir_types:
        record.types.pop(code, None)
    for code in voc.legacy_set(record.system.legacy):
        add_type(voc, rng, record, code, record.from_date)


def adoption_night(
    voc: Vocabulary,
    rng: random.Random,
    glns: Collection[MutableGln],
    today: date,
    yesterday: date,
    at_least: int,
) -> None:
    """One night of CareCommunication uptake among ``glns``: at least ``at_least`` adopt it,
    and some that adopted earlier drop their obsolete types."""
    legacy = voc.legacy_correspondence
    eligible = [
        g
        for g in glns
        if g.owner is not None
        and not g.frozen
        and not g.non_active
        and g.system.certified_fhir
        and voc.fhir_correspondence not in g.types
        and any(c in g.types for c in legacy)
    ]
    adopted = 0
    for record in eligible:
        if rng.random() < record.system.daily_fhir:
            adopt(voc, rng, record, today, drop_share=0.35)
            record.updated_at = today
            adopted += 1
    # Keep adoption visibly growing even in the tiny profile, also on a night when GLNs
    # with FDIS91 left the extract.
    waiting = [g for g in eligible if voc.fhir_correspondence not in g.types]
    rng.shuffle(waiting)
    while adopted < at_least and waiting:
        record = waiting.pop()
        adopt(voc, rng, record, today, drop_share=0.35)
        record.updated_at = today
        adopted += 1
    # Some of yesterday's leftovers clean up their obsolete types.
    for record in glns:
        if (
            not record.frozen
            and voc.fhir_correspondence in record.types
            and any(c in record.types for c in legacy)
            and record.types[voc.fhir_correspondence][1] < today
            and rng.random() < 0.1
        ):
            drop_legacy(voc, record, yesterday)
