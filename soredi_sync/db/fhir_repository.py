"""The FHIR directory's resource versions (``fhir_resource_versions``), written by
``services/fhir_directory.py`` after each sync and read by the ``/fhir`` API and the export.
It never commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, insert, select, text
from sqlalchemy.orm import Session

from soredi_sync.db.models import FhirResourceVersion
from soredi_sync.ports.records import FhirVersion


def _record(row: FhirResourceVersion) -> FhirVersion:
    return FhirVersion(
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        snapshot_id=row.snapshot_id,
        last_updated=row.last_updated,
        deleted=row.deleted,
        content_hash=row.content_hash,
        content=row.content,
        id=row.id,
    )


class SqlAlchemyFhirRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _latest(self, resource_type: str, at_snapshot: int | None = None) -> Select[int]:
        newest = select(func.max(FhirResourceVersion.id)).where(
            FhirResourceVersion.resource_type == resource_type
        )
        if at_snapshot is not None:
            newest = newest.where(FhirResourceVersion.snapshot_id <= at_snapshot)
        return newest.group_by(FhirResourceVersion.resource_id)

    def latest_hashes(self, resource_type: str) -> dict[str, str | None]:
        """Each resource's latest content hash (None: its latest version is a deletion)."""
        rows = self.session.execute(
            select(FhirResourceVersion.resource_id, FhirResourceVersion.content_hash).where(
                FhirResourceVersion.id.in_(self._latest(resource_type))
            )
        )
        return {resource_id: digest for resource_id, digest in rows}  # noqa: C416 - Rows

    def current(self, resource_type: str, at_snapshot: int | None = None) -> list[FhirVersion]:
        """The latest version of each resource not deleted (on ``at_snapshot``: the latest
        made by it or before), in resource id order."""
        rows = self.session.scalars(
            select(FhirResourceVersion)
            .where(
                FhirResourceVersion.id.in_(self._latest(resource_type, at_snapshot)),
                FhirResourceVersion.deleted.is_(False),
            )
            .order_by(FhirResourceVersion.resource_id)
        )
        return [_record(row) for row in rows]

    def iter_current(
        self,
        resource_type: str,
        at_snapshot: int | None = None,
        *,
        chunk: int = 1000,
        as_json: bool = False,
    ) -> Iterator[FhirVersion]:
        """:meth:`current`, read ``chunk`` rows at a time (for an export of every resource);
        ``as_json``: the contents as the database holds their JSON text."""
        where = (
            FhirResourceVersion.id.in_(self._latest(resource_type, at_snapshot)),
            FhirResourceVersion.deleted.is_(False),
        )
        order = FhirResourceVersion.resource_id
        if as_json:
            yield from self._as_json(resource_type, where, order, None, chunk)
            return
        rows = self.session.scalars(
            select(FhirResourceVersion)
            .where(*where)
            .order_by(order)
            .execution_options(yield_per=chunk)
        )
        for row in rows:
            yield _record(row)
            self.session.expunge(row)

    def newest_id(self) -> int:
        return self.session.scalar(select(func.max(FhirResourceVersion.id))) or 0

    def update_statistics(self) -> None:
        """``ANALYZE`` the table on PostgreSQL (in the unit's transaction: commit it to keep
        them). Measured after a first national snapshot: a history page of 1,000 Endpoints
        230 ms before (every Endpoint sorted on disk), 21 ms after. SQLite's planner picks the
        (type, id) index without statistics, so it is left as it is."""
        if self._dialect() == "postgresql":
            self.session.execute(text(f"ANALYZE {FhirResourceVersion.__tablename__}"))

    def iter_latest(
        self, resource_type: str, *, up_to_id: int, chunk: int = 2000
    ) -> Iterator[FhirVersion]:
        """The latest version of each resource among those up to ``up_to_id`` (deletions
        included), as JSON text, ``chunk`` rows at a time; by resource id, as the engine gives
        it without holding the rows (the caller does not rely on it; it lays out the index in
        memory in the order searches scan it, which halves a name search's time)."""
        v = FhirResourceVersion
        latest = (
            select(v.resource_id.label("rid"), func.max(v.id).label("mid"))
            .where(v.resource_type == resource_type, v.id <= up_to_id)
            .group_by(v.resource_id)
            .subquery("latest")
        )
        where = (v.id == latest.c.mid,)
        # PostgreSQL sorts on the server; SQLite would sort the rows, JSON and all, in this
        # process (a 128 MB temporary B-tree for the national Endpoints), while its group-by
        # already reads them by resource id.
        order = latest.c.rid if self._dialect() == "postgresql" else None
        yield from self._as_json(resource_type, where, order, None, chunk, join=latest)

    def _as_json(
        self,
        resource_type: str,
        where: Sequence[ColumnElement[bool]],
        order: Any,
        limit: int | None,
        chunk: int | None = None,
        *,
        join: Any = None,
    ) -> Iterator[FhirVersion]:
        """Versions with their content as the stored JSON text (``cast`` to text: PostgreSQL's
        ``json`` keeps the text it was given), neither decoded nor made into ORM objects."""
        v = FhirResourceVersion
        query = select(
            v.id,
            v.resource_id,
            v.snapshot_id,
            v.last_updated,
            v.deleted,
            v.content_hash,
            cast(v.content, Text),
        )
        if join is not None:
            query = query.select_from(join).join(v, *where)
        else:
            query = query.where(*where)
        if order is not None:
            query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        if chunk is not None:
            query = query.execution_options(yield_per=chunk)
        for vid, rid, snapshot_id, updated, deleted, digest, body in self.session.execute(query):
            yield FhirVersion(
                resource_type,
                rid,
                snapshot_id,
                updated,
                deleted,
                digest,
                None,
                vid,
                None if deleted else body,
            )

    def history(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        after_id: int = 0,
        limit: int = 100,
        as_json: bool = False,
    ) -> list[FhirVersion]:
        """Versions of ``resource_type`` made after ``since`` (None: all), oldest first,
        from the version after ``after_id`` (for paging); ``as_json``: the contents as the
        database holds their JSON text (about 20 times faster for a page of Endpoints than
        decoding them, and served as it is)."""
        where = [
            FhirResourceVersion.resource_type == resource_type,
            FhirResourceVersion.id > after_id,
        ]
        if since is not None:
            where.append(FhirResourceVersion.last_updated > since)
        if as_json:
            return list(self._as_json(resource_type, where, FhirResourceVersion.id, limit))
        rows = self.session.scalars(
            select(FhirResourceVersion).where(*where).order_by(FhirResourceVersion.id).limit(limit)
        )
        return [_record(row) for row in rows]

    def newest_first(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        before_id: int | None = None,
        limit: int = 100,
        resource_id: str | None = None,
    ) -> list[FhirVersion]:
        """Versions of ``resource_type`` (of one resource: ``resource_id``) made at or after
        ``since`` (None: all), newest first, older than the version ``before_id`` (for
        paging), their contents as the stored JSON text: a FHIR history page."""
        v = FhirResourceVersion
        where = [v.resource_type == resource_type]
        order = v.id.desc()
        if resource_id is not None:
            where.append(v.resource_id == resource_id)
            # One resource's versions are one per snapshot, stored in snapshot order: by the
            # snapshot, its unique index finds them, rather than a scan of the type's versions.
            order = v.snapshot_id.desc()
        if before_id is not None:
            where.append(v.id < before_id)
        if since is not None and resource_id is None and self._dialect() == "sqlite":
            # SQLite would read every version since then, JSON and all, into a temporary
            # B-tree to sort it (0.4 s for a first national snapshot's Organizations): the
            # oldest version since then is found on the (type, time) index instead, and the
            # page is a range of the (type, id) index from there. Versions are stored in
            # snapshot order and a later snapshot is taken later, so by id they are in time
            # order too.
            first = self.session.scalar(
                select(v.id)
                .where(v.resource_type == resource_type, v.last_updated >= since)
                .order_by(v.last_updated, v.id)
                .limit(1)
            )
            if first is None:
                return []
            where.append(v.id >= first)
        elif since is not None:
            where.append(v.last_updated >= since)
        return list(self._as_json(resource_type, where, order, limit))

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def version(self, resource_type: str, resource_id: str, snapshot_id: int) -> FhirVersion | None:
        """The version of a resource that snapshot ``snapshot_id`` made (its ``versionId``),
        its content as the stored JSON text; None if that snapshot made none."""
        v = FhirResourceVersion
        where = (
            v.resource_type == resource_type,
            v.resource_id == resource_id,
            v.snapshot_id == snapshot_id,
        )
        return next(self._as_json(resource_type, where, None, 1), None)

    def has_versions_up_to(self, snapshot_id: int) -> bool:
        """Whether a version was made by ``snapshot_id`` or an earlier snapshot."""
        found = self.session.scalar(
            select(FhirResourceVersion.id)
            .where(FhirResourceVersion.snapshot_id <= snapshot_id)
            .limit(1)
        )
        return found is not None

    def add(self, versions: Sequence[FhirVersion]) -> None:
        if not versions:
            return
        self.session.execute(
            insert(FhirResourceVersion),
            [
                {
                    "resource_type": v.resource_type,
                    "resource_id": v.resource_id,
                    "snapshot_id": v.snapshot_id,
                    "last_updated": v.last_updated,
                    "deleted": v.deleted,
                    "content_hash": v.content_hash,
                    "content": v.content,
                }
                for v in versions
            ],
        )
