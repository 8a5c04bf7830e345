"""The sandbox's synthetic SOR world: units, GLNs and their message types, evolving day by day.

:class:`World` holds the register's state and the identifiers it hands out. Building day 0 is
:mod:`soredi_sync.sandbox.build` (with :mod:`soredi_sync.sandbox.planted` for the reference
addresses and planted defects); :meth:`World.advance` runs one night of
:mod:`soredi_sync.sandbox.churn` (CareCommunication adoption, renames, new and closed units,
VANS changes, then the accepted SORUS submissions that take effect that day, see
:mod:`soredi_sync.sandbox.journal`). :meth:`World.snapshot` turns the current state into domain
records (:class:`~soredi_sync.domain.model.Unit`, :class:`~soredi_sync.domain.model.Gln`,
capabilities) so the generator's own view of "what the files say" uses the same vocabulary as
the parsers, and from that snapshot the expected audit defects and the day-to-day changes are
computed.

Determinism: every random choice comes from a :class:`random.Random` seeded with a string built
from (profile, seed, day) (string seeds are hashed with SHA-512, independent of
``PYTHONHASHSEED``), and nothing iterates over a ``set`` of strings, whose order would vary
between processes. Day *n* therefore depends only on (profile, seed, n) and the submissions
effective on day *n* or earlier, never on how many days are generated.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from soredi_sync.domain.gln import with_check_digit
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind
from soredi_sync.sandbox import build, churn, names
from soredi_sync.sandbox.capabilities import initial_types
from soredi_sync.sandbox.catalog import (
    BASE_DATE,
    PROFILES,
    REFERENCE_GLNS,
    SOR_NAMESPACE,
    TYPE_CODES,
    System,
    past_date,
    sctid,
    weighted,
)
from soredi_sync.sandbox.journal import JournalEntry
from soredi_sync.sandbox.mutable import MutableGln, MutableUnit, gln_record, unit_record
from soredi_sync.sandbox.snapshot import DEFECT_CODES, Snapshot
from soredi_sync.sandbox.vocabulary import Vocabulary


class World:
    """The synthetic register for one profile and seed, at :attr:`day`.

    :param submissions: accepted SORUS changes (:class:`~soredi_sync.sandbox.journal.JournalEntry`);
        :meth:`advance` applies those whose ``effective_day`` is the new day, in the given order.
    """

    def __init__(
        self,
        profile: str,
        seed: int,
        message_types: MessageTypeRegistry,
        base_date: date = BASE_DATE,
        *,
        submissions: Iterable[JournalEntry] = (),
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown sandbox profile {profile!r}; known: {sorted(PROFILES)}")
        self.spec = PROFILES[profile]
        self.seed = seed
        self.base_date = base_date
        self.day = 0
        self.vocabulary = Vocabulary(message_types)
        self.owners: list[MutableUnit] = []
        self.units: dict[str, MutableUnit] = {}
        self.glns: dict[str, MutableGln] = {}
        self.municipalities: list[names.Municipality] = []  # those the profile covers
        self.planted: dict[str, list[str]] = {code: [] for code in DEFECT_CODES}
        self.reference_glns: dict[str, dict[str, str]] = {}
        # Reserve the real test addresses so no synthetic GLN collides with them.
        self._used_bodies: set[str] = {gln[:-1] for gln in REFERENCE_GLNS}
        self._next_item = 30_000
        self._next_body = 579_000_010_000
        self._next_provider = 10_000
        self._next_pharmacy = 100
        self._submissions: dict[int, list[JournalEntry]] = {}
        for entry in submissions:
            self._submissions.setdefault(entry.effective_day, []).append(entry)
        build.populate(self, self.rng_for("init"))

    def rng_for(self, label: str) -> random.Random:
        """The random stream of one step (``init``, ``day-3``, ``sorus-3``) of this register."""
        return random.Random(f"soredi-sandbox:{self.spec.name}:{self.seed}:{label}")

    @property
    def snapshot_date(self) -> date:
        return self.base_date + timedelta(days=self.day)

    def submissions_on(self, day: int) -> Sequence[JournalEntry]:
        """The accepted SORUS changes effective on ``day``, in the given order."""
        return self._submissions.get(day, ())

    # -- identifiers --

    def _new_sor_id(self, rng: random.Random, gap: bool = False) -> str:
        # Units of one tree get consecutive items, as in real extracts; trees are spaced apart.
        self._next_item += rng.randint(2, 12) if gap else 1
        return sctid(self._next_item, SOR_NAMESPACE)

    def new_gln(self, rng: random.Random) -> str:
        """A fresh valid GLN, never one of the reserved real test addresses."""
        while True:
            self._next_body += rng.randint(1, self.spec.gln_step)
            body = str(self._next_body)
            if body not in self._used_bodies:
                self._used_bodies.add(body)
                return with_check_digit(body)

    def new_provider(self, rng: random.Random) -> str:
        """A fresh provider number (``ydernummer``) for a practice."""
        self._next_provider += rng.randint(1, 9)
        return f"{self._next_provider:06d}"

    def new_pharmacy(self, rng: random.Random) -> int:
        """A fresh pharmacy number; its units are numbered ``N,1``, ``N,2``, ..."""
        self._next_pharmacy += rng.randint(1, 3)
        return self._next_pharmacy

    # -- units and GLNs --

    def unit(
        self,
        rng: random.Random,
        name: str,
        kind: UnitKind,
        category: str,
        parent: MutableUnit | None,
        type_key: str,
        municipality: names.Municipality,
        from_date: date | None = None,
        gap: bool = False,
    ) -> MutableUnit:
        """A new unit under ``parent`` (None: a new owner), with drawn dates and address."""
        if from_date is None:
            start = parent.from_date if parent is not None else date(1995, 1, 1)
            from_date = (
                start
                if parent is not None and rng.random() < 0.6
                else past_date(rng, start, self.base_date - timedelta(days=400))
            )
        updated = past_date(rng, from_date, self.base_date - timedelta(days=1))
        unit = MutableUnit(
            sor_id=self._new_sor_id(rng, gap=gap),
            name=name,
            kind=kind,
            category=category,
            parent=parent,
            type_code=TYPE_CODES[type_key],
            place=(
                rng.choice(names.STREETS),
                str(rng.randint(1, 150)),
                municipality.postal_code,
                municipality.town,
            ),
            phone=str(rng.randint(20_000_000, 99_999_999)),
            from_date=from_date,
            updated_at=updated,
        )
        self.units[unit.sor_id] = unit
        if parent is None:
            self.owners.append(unit)
        return unit

    def attach_gln(
        self,
        rng: random.Random,
        unit: MutableUnit,
        system: System,
        region_code: str,
        administrator: str,
        category: str,
        gln: str | None = None,
        vans: str | None = None,
        with_types: bool = True,
    ) -> MutableGln:
        """Give ``unit`` its own GLN (``gln``, else a fresh one), with its initial types."""
        value = gln or self.new_gln(rng)
        if gln is not None:
            self._used_bodies.add(gln[:-1])
        record = MutableGln(
            gln=value,
            system=system,
            vans=vans or weighted(rng, system.vans),
            region_code=region_code,
            edi_administrator=administrator,
            owner=unit,
            from_date=past_date(rng, unit.from_date, self.base_date - timedelta(days=30)),
            category=category,
        )
        record.updated_at = past_date(rng, record.from_date, self.base_date - timedelta(days=1))
        unit.gln_mode = GlnMode.OWN
        unit.gln = value
        self.glns[value] = record
        if with_types:
            initial_types(self.vocabulary, rng, record, self.base_date)
        return record

    # -- days --

    def advance(self) -> None:
        """Move to the next day: removals, closures, renames, new units, VANS changes, adoption,
        then the SORUS submissions effective that day."""
        self.day += 1
        churn.night(self)

    def iter_units(self) -> Iterable[MutableUnit]:
        for owner in self.owners:
            yield from owner.walk()

    def snapshot(self) -> Snapshot:
        """The current day as domain records (what a correct parser should produce)."""
        units: dict[str, Unit] = {unit.sor_id: unit_record(unit) for unit in self.iter_units()}
        glns: dict[str, Gln] = {}
        capabilities: dict[str, dict[str, str | None]] = {}
        rows = 0
        by_id = self.vocabulary.by_id
        for record in self.glns.values():
            glns[record.gln] = gln_record(record)
            current = {
                code: (by_id[edi_id].version_code or None)
                for code, (edi_id, _since) in sorted(record.types.items())
            }
            if current:
                capabilities[record.gln] = current
            rows += len(record.types) + len(record.ended)
        return Snapshot(
            day=self.day,
            snapshot_date=self.snapshot_date,
            units=units,
            glns=glns,
            capabilities=capabilities,
            capability_rows=rows,
            vocabulary=self.vocabulary,
        )
