"""A loopback HTTP server that plays sor-filer from a generated sandbox directory.

It serves the current day's ``sor.zip`` and ``Sor_complete.zip`` with ``ETag`` (quoted sha256)
and ``Last-Modified``, answers conditional requests with 304, and can be told to misbehave the
way real downloads do (error statuses with ``Retry-After``, slow answers, bodies cut off
mid-transfer, connections reset without an answer) so fetch, retry and fail-closed logic can be
tested end to end. Tests drive it through :class:`SandboxServer`; a person running
``soredi-sync sandbox serve`` drives it through the ``/_sandbox/`` control endpoints.

The server owns the directory's SORUS journal (:mod:`soredi_sync.sandbox.journal`): when it
moves to a day that accepted submissions take effect on and the files do not show them yet, it
regenerates the days from the earliest such one before switching (the earlier days, including
the one being served, are left as they are), so the next day's files carry the change.

It binds to loopback only unless explicitly allowed: it serves whatever directory it is given
and its control endpoints are unauthenticated. How a request is answered is
:mod:`soredi_sync.sandbox.http_handler`; this module holds the state it answers from.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.reference_data import CsvColumns
from soredi_sync.sandbox.generate import MANIFEST_NAME, Manifest, day_directory, generate
from soredi_sync.sandbox.http_handler import Fault, FilesHandler, normalise_path
from soredi_sync.sandbox.journal import JournalEntry, SubmissionJournal
from soredi_sync.sandbox.loopback import BackgroundServer, FaultQueue

logger = logging.getLogger(__name__)

_DAY_DIR = re.compile(r"^day-(\d{3,})$")


def is_loopback_host(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


class SandboxServer(BackgroundServer):
    """Serve a generated sandbox directory over HTTP on loopback.

    :param directory: output of :func:`soredi_sync.sandbox.generate.generate`.
    :param host: address to bind; loopback only unless ``allow_non_loopback``.
    :param port: 0 picks a free port (see :attr:`base_url` after :meth:`start`).
    :param day: the day whose files are served first.
    :param xml_path: URL path of the XML zip (``sources.sor_xml_path``).
    :param csv_path: URL path of the CSV zip (``sources.sor_csv_path``).
    :param control: serve the ``/_sandbox/`` control endpoints.
    :param columns: the CSV columns the directory was generated with, used to regenerate days
        for SORUS submissions (default: ``config/csv-columns.toml``, as :func:`generate`).
    :param message_types: likewise (default: ``config/message-types.tsv``).
    :param journal: the SORUS journal (default: the directory's ``sorus-journal.json``, read
        if present and written only when a submission arrives).
    :raises ValueError: for a non-loopback host without ``allow_non_loopback``, a day the
        directory does not have, or an unreadable journal.
    """

    handler_class = FilesHandler
    name = "sandbox server"

    def __init__(
        self,
        directory: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        day: int = 0,
        xml_path: str = "sor.zip",
        csv_path: str = "Sor_complete.zip",
        *,
        allow_non_loopback: bool = False,
        control: bool = True,
        columns: CsvColumns | Mapping[str, Any] | None = None,
        message_types: MessageTypeRegistry | None = None,
        journal: SubmissionJournal | None = None,
    ) -> None:
        if not allow_non_loopback and not is_loopback_host(host):
            raise ValueError(
                f"refusing to serve the sandbox on non-loopback host {host!r} "
                "(pass allow_non_loopback=True to do it anyway)"
            )
        self.directory = Path(directory)
        super().__init__(host, port)
        self.control = control
        manifest_path = self.directory / MANIFEST_NAME
        self.manifest: Manifest | None = (
            Manifest.load(self.directory) if manifest_path.is_file() else None
        )
        files = self.manifest.files if self.manifest is not None else {}
        # URL path -> file name inside a day folder.
        self._routes = {
            normalise_path(xml_path): files.get("sor_xml", "sor.zip"),
            normalise_path(csv_path): files.get("sor_csv", "Sor_complete.zip"),
        }
        self._lock = threading.Lock()
        self._faults: FaultQueue[Fault] = FaultQueue()
        self._requests: list[tuple[str, str, int]] = []
        self._etags: dict[tuple[str, int, int], str] = {}
        self.columns = columns
        self.message_types = message_types
        self.journal = (
            journal if journal is not None else SubmissionJournal.for_directory(self.directory)
        )
        # Held while the served day changes (and the files are regenerated), and by SORUS while
        # it judges a submission against the day: a submission is never recorded for a day that
        # is no longer the one served. Re-entrant so a holder may call set_day.
        self._day_lock = threading.RLock()
        self._day = 0
        if day in self.available_days():
            # Nothing is served yet: bring every day up to date with the journal now.
            self._publish(self.last_day)
        self.set_day(day)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``, usable as ``sources.base_url``."""
        return f"http://{self.url_host}:{self.running_port}/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    # -- days --

    def available_days(self) -> list[int]:
        """Days with both files; with a manifest, only the days it describes (a folder left
        over from an earlier, longer generation is not served)."""
        days = []
        for child in self.directory.iterdir() if self.directory.is_dir() else ():
            match = _DAY_DIR.match(child.name)
            if match and all((child / name).is_file() for name in self._routes.values()):
                days.append(int(match.group(1)))
        if self.manifest is not None:
            days = [day for day in days if day <= self.manifest.days]
        return sorted(days)

    @property
    def day(self) -> int:
        return self._day

    @property
    def last_day(self) -> int:
        """The last day the directory has (a SORUS change needs a day after the served one)."""
        return max(self.available_days(), default=self._day)

    def set_day(self, day: int) -> None:
        """Serve ``day``'s files from now on.

        When journal entries effective on ``day`` or earlier are not in the files yet, the days
        from the earliest pending entry on are regenerated first (see :meth:`publish`).

        :raises ValueError: when the directory has no complete ``day-NNN`` folder for it.
        """
        if day not in self.available_days():
            raise ValueError(f"the sandbox directory {self.directory} has no day {day}")
        with self._day_lock:
            self._publish(day)
            with self._lock:
                self._day = day
        logger.info("Sandbox server now serves day %d", day)

    @contextmanager
    def holding_day(self) -> Iterator[int]:
        """Keep the served day (and the files) from changing while the block runs; yields it."""
        with self._day_lock:
            yield self._day

    # -- SORUS journal --

    def pending_submissions(self) -> list[JournalEntry]:
        """Journal entries the files do not show yet (effective after the served day, unless
        the journal was changed behind the server's back)."""
        written = set(self.manifest.submissions()) if self.manifest is not None else set()
        return [entry for entry in self.journal.entries() if entry not in written]

    def publish(self, up_to: int | None = None) -> bool:
        """Regenerate the days that pending journal entries change, if any takes effect on
        ``up_to`` (default: the last day) or earlier; :meth:`set_day` does this by itself.

        :returns: whether files were rewritten.
        :raises ValueError: when the directory has no manifest to regenerate from.
        """
        with self._day_lock:
            return self._publish(self.last_day if up_to is None else up_to)

    def _publish(self, up_to: int) -> bool:
        journal = self.journal.entries()
        manifest = self.manifest
        written = manifest.submissions() if manifest is not None else ()
        in_journal = set(journal)
        in_files = set(written)
        # Entries the files lack, and entries the files have that the journal no longer does
        # (a replaced journal file): both change the days from their effective day on.
        changed = [e for e in journal if e not in in_files] + [
            e for e in written if e not in in_journal
        ]
        if not any(e.effective_day <= up_to for e in changed):
            return False
        if manifest is None:
            raise ValueError(
                f"{self.directory} has no {MANIFEST_NAME}: cannot publish SORUS submissions"
            )
        write_from = max(1, min(e.effective_day for e in changed))
        if self._httpd is not None and write_from <= self._day:
            logger.warning("Rewriting day %d while it is being served", self._day)
        started = datetime.now(UTC)
        files = manifest.files
        generate(
            self.directory,
            manifest.profile,
            manifest.seed,
            manifest.days,
            columns=self.columns,
            message_types=self.message_types,
            base_date=date.fromisoformat(manifest.base_date),
            xml_zip=files["sor_xml"],
            csv_zip=files["sor_csv"],
            xml_member=files["sor_xml_member"],
            edi_types_member=files["edi_types_member"],
            gln_edi_types_member=files["gln_edi_types_member"],
            glns_member=files["glns_member"],
            submissions=journal,
            write_from=write_from,
        )
        self.manifest = Manifest.load(self.directory)
        with self._lock:
            # A rewritten file may keep its size and (on a coarse clock) its mtime.
            self._etags.clear()
        logger.info(
            "Sandbox published %d SORUS change(s): days %d..%d regenerated in %.1f s",
            len(changed),
            write_from,
            manifest.days,
            (datetime.now(UTC) - started).total_seconds(),
        )
        return True

    # -- faults --

    def inject(
        self,
        path: str | None = None,
        status: int | None = None,
        delay: float | None = None,
        truncate: int | None = None,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        reset: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests to ``path`` (or any file path) misbehave.

        :param status: answer with this status (and ``headers``, e.g. ``Retry-After``).
        :param delay: wait this many seconds before answering (or misbehaving).
        :param truncate: answer 200 with the full ``Content-Length`` but close the connection
            after this many body bytes.
        :param reset: close the connection with a TCP reset and no answer at all.
        :raises ValueError: for an impossible fault (no effect, negative numbers, bad status).
        """
        fault = Fault(
            path=normalise_path(path) if path else None,
            status=status,
            delay=delay,
            truncate=truncate,
            times=times,
            headers=dict(headers or {}),
            reset=reset,
        )
        self._faults.add(fault)
        logger.info("Sandbox fault injected: %s", fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return self._faults.pending()

    def _take_fault(self, path: str) -> Fault | None:
        return self._faults.take(lambda fault: fault.path is None or fault.path == path)

    # -- bookkeeping --

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every file request so far; control calls excluded.

        A reset connection is recorded with status 0
        (:data:`~soredi_sync.sandbox.http_handler.STATUS_RESET`).
        """
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._requests.append((method, path, int(status)))

    def _file_for(self, path: str) -> Path | None:
        name = self._routes.get(path)
        if name is None:
            return None
        with self._lock:
            day = self._day
        return self.directory / day_directory(day) / name

    def _etag(self, target: Path) -> str:
        stat = target.stat()
        key = (str(target), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._etags.get(key)
        if cached is None:
            digest = hashlib.sha256()
            with target.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            cached = f'"{digest.hexdigest()}"'
            with self._lock:
                self._etags[key] = cached
        return cached

    def _last_modified(self, target: Path) -> datetime:
        """The day's extract time from the manifest, else the file's mtime (whole seconds)."""
        day = int(_DAY_DIR.match(target.parent.name).group(1))  # type: ignore[union-attr]
        if self.manifest is not None and day < len(self.manifest.snapshots):
            stamp = datetime.fromisoformat(self.manifest.snapshots[day].created_at)
        else:
            stamp = datetime.fromtimestamp(target.stat().st_mtime, tz=UTC)
        return stamp.astimezone(UTC).replace(microsecond=0)

    def state(self) -> dict[str, Any]:
        """What ``GET /_sandbox/state`` answers."""
        with self._lock:
            faults = [f.to_dict() for f in self._faults.pending()]
            requests = len(self._requests)
            day = self._day
        return {
            "directory": str(self.directory),
            "day": day,
            "days": self.available_days(),
            "paths": dict(self._routes),
            "faults": faults,
            "requests": requests,
            "base_url": self.base_url if self._httpd is not None else None,
            "journal": {
                "file": str(self.journal.path) if self.journal.path is not None else None,
                "submissions": self.journal.submissions,
                "entries": len(self.journal),
                "pending": [entry.to_dict() for entry in self.pending_submissions()],
            },
        }


def serve_forever(
    directory: Path | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    day: int = 0,
    xml_path: str = "sor.zip",
    csv_path: str = "Sor_complete.zip",
    *,
    allow_non_loopback: bool = False,
    on_ready: Callable[[SandboxServer], None] | None = None,
    columns: CsvColumns | Mapping[str, Any] | None = None,
) -> None:
    """Serve ``directory`` until interrupted (Ctrl-C); for ``soredi-sync sandbox serve``.

    :param on_ready: called once the server listens, e.g. to print :attr:`~SandboxServer.base_url`
        or to start SOAP services linked to it.
    :param columns: as :class:`SandboxServer`.
    :raises ValueError: as :class:`SandboxServer`.
    """
    server = SandboxServer(
        directory,
        host=host,
        port=port,
        day=day,
        xml_path=xml_path,
        csv_path=csv_path,
        allow_non_loopback=allow_non_loopback,
        columns=columns,
    )
    with server:
        if on_ready is not None:
            on_ready(server)
        try:
            while not server._stopping.wait(3600):
                pass
        except KeyboardInterrupt:
            logger.info("Sandbox server interrupted; stopping")


__all__ = ["SandboxServer", "is_loopback_host", "serve_forever"]
