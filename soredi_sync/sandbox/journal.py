"""The sandbox's SORUS submission journal: the accepted changes the next days will publish.

The SOAP sandbox's SORUS service judges each submitted change against the day it serves and
writes the accepted ones here, each with ``effective_day`` = the day received + 1. The generator
(:class:`~soredi_sync.sandbox.world.World`) applies an entry when it advances to that day, so
after ``set_day(N + 1)`` the files, the SKRS feed and SORLS all show it.

With a sandbox directory the journal lives in ``<directory>/sorus-journal.json`` (written
atomically on every submission, so a restarted ``soredi-sync sandbox serve`` keeps it); without
one it is kept in memory. The journal is append-only: entries are never edited or dropped, and
:attr:`SubmissionJournal.version` changes whenever one is added.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

JOURNAL_NAME = "sorus-journal.json"
JOURNAL_FORMAT = 1
ACTIONS = ("add", "remove")


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """One change as submitted: add or remove ``message_type`` on ``gln``."""

    change_id: str
    gln: str
    action: str
    message_type: str
    version_code: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One accepted change, as the generator applies it on ``effective_day``.

    ``ticket`` is the submission's identifier (``SORUS-000001``), shared by every change of one
    submission; ``received_at`` is the wall-clock receipt time (UTC, ISO 8601). Only the day
    numbers and the change itself affect the generated files.
    """

    ticket: str
    change_id: str
    gln: str
    action: str
    message_type: str
    version_code: str | None
    received_day: int
    effective_day: int
    received_at: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.effective_day <= self.received_day:
            raise ValueError(
                f"effective_day {self.effective_day} must follow received_day {self.received_day}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JournalEntry:
        return cls(**data)


def ticket_name(number: int) -> str:
    """The submission identifier for the ``number``-th submission (``SORUS-000001``)."""
    return f"SORUS-{number:06d}"


class SubmissionJournal:
    """A thread-safe, append-only record of accepted SORUS changes.

    :param path: the JSON file to load from and persist to; None keeps the journal in memory.
    :raises ValueError: when ``path`` exists but is not a journal this version can read.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = []
        self._submissions = 0
        self._version = 0
        if self.path is not None and self.path.is_file():
            self._load(self.path)

    @classmethod
    def for_directory(cls, directory: Path | str) -> SubmissionJournal:
        """The journal of a sandbox directory (``<directory>/sorus-journal.json``)."""
        return cls(Path(directory) / JOURNAL_NAME)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != JOURNAL_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {JOURNAL_FORMAT}")
            entries = [JournalEntry.from_dict(item) for item in data["entries"]]
            submissions = int(data["submissions"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is not a readable SORUS journal: {exc}") from exc
        self._entries = entries
        self._submissions = max(submissions, len({e.ticket for e in entries}))
        self._version = len(entries)
        logger.info("Loaded SORUS journal %s: %d entries", path, len(entries))

    # -- reading --

    def entries(self) -> tuple[JournalEntry, ...]:
        """Every accepted change so far, in the order received."""
        with self._lock:
            return tuple(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def version(self) -> int:
        """A counter that changes whenever an entry is added (for caches)."""
        with self._lock:
            return self._version

    @property
    def submissions(self) -> int:
        """How many submissions were received, accepted changes or not."""
        with self._lock:
            return self._submissions

    def effective_by(self, day: int) -> tuple[JournalEntry, ...]:
        """The entries that take effect on ``day`` or earlier (what that day shows)."""
        with self._lock:
            return tuple(e for e in self._entries if e.effective_day <= day)

    # -- writing --

    def record(
        self,
        changes: Sequence[ChangeRequest],
        *,
        received_day: int,
        received_at: datetime | None = None,
        reference: str = "",
    ) -> tuple[str, tuple[JournalEntry, ...]]:
        """Register one submission and its accepted ``changes`` (may be empty).

        Every submission gets the next ticket, even one whose changes were all rejected, so
        tickets are unique per journal. The accepted changes take effect on
        ``received_day + 1``.

        :returns: the ticket and the entries added.
        :raises OSError: when the journal file cannot be written (nothing is recorded then).
        """
        stamp = (received_at or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self._lock:
            ticket = ticket_name(self._submissions + 1)
            added = tuple(
                JournalEntry(
                    ticket=ticket,
                    change_id=change.change_id,
                    gln=change.gln,
                    action=change.action,
                    message_type=change.message_type,
                    version_code=change.version_code,
                    received_day=received_day,
                    effective_day=received_day + 1,
                    received_at=stamp,
                    reference=reference,
                )
                for change in changes
            )
            entries = self._entries + list(added)
            if self.path is not None:
                self._write(self.path, entries, self._submissions + 1)
            self._entries = entries
            self._submissions += 1
            if added:
                self._version += 1
        logger.info(
            "SORUS submission %s on day %d: %d change(s) accepted", ticket, received_day, len(added)
        )
        return ticket, added

    @staticmethod
    def _write(path: Path, entries: Iterable[JournalEntry], submissions: int) -> None:
        payload = {
            "format": JOURNAL_FORMAT,
            "submissions": submissions,
            "entries": [entry.to_dict() for entry in entries],
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        # Replace in one step: a reader (or a crash) never sees half a journal.
        os.replace(temporary, path)


__all__ = [
    "ACTIONS",
    "JOURNAL_NAME",
    "ChangeRequest",
    "JournalEntry",
    "SubmissionJournal",
    "ticket_name",
]
