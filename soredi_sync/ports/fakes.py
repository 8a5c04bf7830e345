"""In-memory twins of the storage ports, for fast service tests without a database.

:class:`FakeUnitOfWork` holds one fake of every repository. Like the real one it keeps only what
was committed: leaving the ``with`` block (or :meth:`~FakeUnitOfWork.rollback`) restores the
state of the last :meth:`~FakeUnitOfWork.commit`. It serves one transaction at a time, so a
service that takes a unit-of-work factory can be given ``lambda: uow``. Every fake keeps its
state in containers of immutable records, which is what makes the rollback a shallow copy.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from soredi_sync.domain.plans import ItemDraft, ItemState, count_states
from soredi_sync.ports.fake_registry import Clock, FakeRegistryRepository, utc_now
from soredi_sync.ports.fake_traffic import FakeTrafficRepository
from soredi_sync.ports.fake_webhooks import FakeWebhookRepository
from soredi_sync.ports.records import (
    DecisionEntry,
    FhirVersion,
    Plan,
    PlanEvent,
    PlanItem,
    PlanSummary,
    RunEnd,
    RunStatus,
    StateChange,
    SyncRunInfo,
    TokenRecord,
)

ACCEPTED = (RunStatus.SUCCEEDED, RunStatus.UNCHANGED)


def _copy(value: Any) -> Any:
    """A copy of the containers in ``value``; the records in them are immutable and shared."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


class FakeSyncRunRepository:
    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self.runs: dict[int, SyncRunInfo] = {}
        self.leases: dict[int, tuple[str, datetime]] = {}  # run id → (holder, expires at)

    def start(
        self,
        source: str,
        location: str,
        trigger: str,
        *,
        holder: str | None = None,
        lease_until: datetime | None = None,
    ) -> int:
        run_id = max(self.runs, default=0) + 1
        now = self._clock()
        self.runs[run_id] = SyncRunInfo(
            id=run_id,
            source=source,
            location=location,
            trigger=trigger,
            status=RunStatus.RUNNING,
            started_at=now,
            finished_at=None,
            duration_seconds=None,
            etags={},
            last_modified={},
            content_hashes={},
            counts={},
            accepted_mass_change=False,
            snapshot_id=None,
            error=None,
        )
        if holder is not None:
            self.leases[run_id] = (holder, lease_until or now)
        return run_id

    def renew_lease(self, run_id: int, holder: str, until: datetime) -> None:
        if self.leases.get(run_id, ("",))[0] == holder:
            self.leases[run_id] = (holder, until)

    def release_lease(self, run_id: int, holder: str) -> None:
        if self.leases.get(run_id, ("",))[0] == holder:
            del self.leases[run_id]

    def close_abandoned(self, error: str, now: datetime | None = None) -> list[int]:
        moment = now or self._clock()
        alive = {run_id for run_id, (_, until) in self.leases.items() if until > moment}
        abandoned = [
            r.id for r in self.runs.values() if r.status is RunStatus.RUNNING and r.id not in alive
        ]
        for run_id in abandoned:
            self.runs[run_id] = replace(
                self.runs[run_id], status=RunStatus.FAILED, finished_at=moment, error=error
            )
        self.leases = {k: v for k, v in self.leases.items() if k in alive}
        return abandoned

    def finish(self, run_id: int, status: RunStatus, **values: Any) -> None:
        run = self.runs[run_id]
        at = self._clock()
        self.runs[run_id] = replace(
            run,
            status=status,
            finished_at=at,
            duration_seconds=(at - run.started_at).total_seconds(),
            **values,
        )

    def get(self, run_id: int) -> SyncRunInfo | None:
        return self.runs.get(run_id)

    def last_accepted(self, source: str) -> SyncRunInfo | None:
        accepted = [r for r in self.runs.values() if r.source == source and r.status in ACCEPTED]
        return max(accepted, key=lambda r: r.id, default=None)

    def recent(self, limit: int = 10) -> list[SyncRunInfo]:
        return [self.runs[i] for i in sorted(self.runs, reverse=True)[:limit]]

    def ended(self, source: str, limit: int) -> list[RunEnd]:
        runs = (self.runs[i] for i in sorted(self.runs, reverse=True))
        ended = (r for r in runs if r.source == source and r.status is not RunStatus.RUNNING)
        return [RunEnd(r.status, r.finished_at, r.error) for r in itertools.islice(ended, limit)]

    def last_confirmed_at(self) -> datetime | None:
        confirmed = [
            r for r in self.runs.values() if r.status in ACCEPTED and r.snapshot_id is not None
        ]
        return max(confirmed, key=lambda r: r.id).finished_at if confirmed else None


class FakeAuditRepository:
    def __init__(self) -> None:
        self.summaries: dict[int, dict[str, Any]] = {}  # snapshot id → findings, adoption, at

    def adoption(self, key: str) -> dict[int, dict[str, dict[str, int]]]:
        return {
            sid: dict(s["adoption"][key])
            for sid, s in self.summaries.items()
            if key in s["adoption"]
        }

    def findings(self, snapshot_id: int) -> dict[str, Any] | None:
        summary = self.summaries.get(snapshot_id)
        return copy.deepcopy(summary["findings"]) if summary is not None else None

    def owner_figures(
        self, snapshot_ids: Collection[int], owners: Collection[str]
    ) -> dict[int, dict[str, dict[str, Any]]]:
        if not owners:
            return {}
        return {
            sid: {
                owner: copy.deepcopy(figures)
                for owner, figures in summary["owners"].items()
                if owner in owners
            }
            for sid, summary in self.summaries.items()
            if sid in snapshot_ids and summary["owners"] is not None
        }

    def save_summary(
        self,
        snapshot_id: int,
        *,
        computed_at: datetime,
        findings: dict[str, Any],
        adoption: dict[str, dict[str, dict[str, int]]],
        owners: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.summaries[snapshot_id] = copy.deepcopy(
            {
                "computed_at": computed_at,
                "findings": findings,
                "adoption": adoption,
                "owners": None if owners is None else {o: dict(f) for o, f in owners.items()},
            }
        )


def _as_json(version: FhirVersion) -> FhirVersion:
    """``version`` as read for serving: its content as JSON text."""
    text = None if version.content is None else json.dumps(version.content)
    return replace(version, content=None, content_json=text)


class FakeFhirRepository:
    def __init__(self) -> None:
        self.versions: list[FhirVersion] = []
        self.statistics_updated = 0

    def _latest(self, resource_type: str, at_snapshot: int | None = None) -> dict[str, FhirVersion]:
        latest: dict[str, FhirVersion] = {}
        for version in self.versions:
            if version.resource_type == resource_type and (
                at_snapshot is None or version.snapshot_id <= at_snapshot
            ):
                latest[version.resource_id] = version
        return latest

    def latest_hashes(self, resource_type: str) -> dict[str, str | None]:
        return {rid: v.content_hash for rid, v in self._latest(resource_type).items()}

    def current(self, resource_type: str, at_snapshot: int | None = None) -> list[FhirVersion]:
        latest = self._latest(resource_type, at_snapshot)
        return [latest[rid] for rid in sorted(latest) if not latest[rid].deleted]

    def iter_current(
        self,
        resource_type: str,
        at_snapshot: int | None = None,
        *,
        chunk: int = 1000,
        as_json: bool = False,
    ) -> Iterator[FhirVersion]:
        for version in self.current(resource_type, at_snapshot):
            yield _as_json(version) if as_json else version

    def newest_id(self) -> int:
        return max((v.id for v in self.versions), default=0)

    def update_statistics(self) -> None:
        self.statistics_updated += 1

    def iter_latest(
        self, resource_type: str, *, up_to_id: int, chunk: int = 2000
    ) -> Iterator[FhirVersion]:
        latest: dict[str, FhirVersion] = {}
        for version in self.versions:
            if version.resource_type == resource_type and version.id <= up_to_id:
                latest[version.resource_id] = version
        for rid in sorted(latest):
            yield _as_json(latest[rid])

    def history(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        after_id: int = 0,
        limit: int = 100,
        as_json: bool = False,
    ) -> list[FhirVersion]:
        found = [
            v
            for v in self.versions
            if v.resource_type == resource_type
            and v.id > after_id
            and (since is None or v.last_updated > since)
        ][:limit]
        return [_as_json(v) for v in found] if as_json else found

    def newest_first(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        before_id: int | None = None,
        limit: int = 100,
        resource_id: str | None = None,
    ) -> list[FhirVersion]:
        found = [
            v
            for v in reversed(self.versions)
            if v.resource_type == resource_type
            and (resource_id is None or v.resource_id == resource_id)
            and (before_id is None or v.id < before_id)
            and (since is None or v.last_updated >= since)
        ]
        return [_as_json(v) for v in found[:limit]]

    def version(self, resource_type: str, resource_id: str, snapshot_id: int) -> FhirVersion | None:
        for found in self.versions:
            if (found.resource_type, found.resource_id, found.snapshot_id) == (
                resource_type,
                resource_id,
                snapshot_id,
            ):
                return _as_json(found)
        return None

    def has_versions_up_to(self, snapshot_id: int) -> bool:
        return any(v.snapshot_id <= snapshot_id for v in self.versions)

    def add(self, versions: Sequence[FhirVersion]) -> None:
        for version in versions:
            self.versions.append(replace(version, id=len(self.versions) + 1))


class FakeTokenRepository:
    def __init__(self) -> None:
        self.tokens: dict[int, TokenRecord] = {}
        self.hashes: dict[str, int] = {}

    def add(
        self,
        token_hash: str,
        name: str,
        scopes: Sequence[str],
        owners: Sequence[str],
        created_at: datetime,
    ) -> TokenRecord:
        token_id = max(self.tokens, default=0) + 1
        record = TokenRecord(
            token_id, name, frozenset(scopes), frozenset(owners), created_at, None, None
        )
        self.tokens[token_id] = record
        self.hashes[token_hash] = token_id
        return record

    def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        token_id = self.hashes.get(token_hash)
        return self.tokens[token_id] if token_id is not None else None

    def get(self, token_id: int) -> TokenRecord | None:
        return self.tokens.get(token_id)

    def revoke(self, token_id: int, at: datetime) -> TokenRecord | None:
        record = self.tokens.get(token_id)
        if record is not None and record.revoked_at is None:
            record = self.tokens[token_id] = replace(record, revoked_at=at)
        return record

    def mark_used(self, last_used: dict[int, datetime]) -> None:
        for token_id, at in last_used.items():
            if token_id in self.tokens:
                self.tokens[token_id] = replace(self.tokens[token_id], last_used_at=at)

    def list(self) -> builtins.list[TokenRecord]:
        return [self.tokens[i] for i in sorted(self.tokens)]


class FakeDecisionRepository:
    def __init__(self) -> None:
        self.entries: list[DecisionEntry] = []

    def add_many(self, entries: Sequence[DecisionEntry]) -> None:
        self.entries.extend(entries)

    def since(self, since: datetime, limit: int = 1000) -> list[DecisionEntry]:
        found = sorted((e for e in self.entries if e.decided_at >= since), key=_decided_at)
        return found[:limit]

    def purge(self, older_than: datetime) -> int:
        kept = [e for e in self.entries if e.decided_at >= older_than]
        purged, self.entries = len(self.entries) - len(kept), kept
        return purged


def _decided_at(entry: DecisionEntry) -> datetime:
    return entry.decided_at


class FakePlanRepository:
    def __init__(self) -> None:
        self.plans: dict[int, Plan] = {}
        self.event_log: dict[int, list[PlanEvent]] = {}
        self.next_item = 1

    def add(
        self,
        *,
        created_at: datetime,
        created_by: str,
        goal: str,
        owners: Sequence[str],
        owner_kind: str | None,
        snapshot_id: int,
        items: Sequence[ItemDraft],
    ) -> int:
        plan_id = max(self.plans, default=0) + 1
        rows = tuple(
            PlanItem(
                self.next_item + n,
                d.gln,
                d.owner_sor_id,
                d.action,
                d.message_type,
                d.version_code,
                d.reason,
                ItemState.PLANNED,
                created_at,
                None,
            )
            for n, d in enumerate(items)
        )
        self.next_item += len(rows)
        self.plans[plan_id] = Plan(
            plan_id,
            created_at,
            created_by,
            goal,
            tuple(sorted(owners)),
            owner_kind,
            snapshot_id,
            rows,
        )
        details = {"goal": goal, "items": len(rows), "snapshot_id": snapshot_id}
        self.event_log[plan_id] = [
            PlanEvent(created_at, created_by, "created", None, None, None, details),
            *(
                PlanEvent(
                    created_at, created_by, "created", i.id, None, ItemState.PLANNED.value, {}
                )
                for i in rows
            ),
        ]
        return plan_id

    def get(self, plan_id: int) -> Plan | None:
        return self.plans.get(plan_id)

    def events(self, plan_id: int) -> list[PlanEvent]:
        return list(self.event_log.get(plan_id, []))

    def summaries(
        self, *, within: Collection[str] | None = None, limit: int = 50, offset: int = 0
    ) -> list[PlanSummary]:
        chosen = [
            plan
            for _, plan in sorted(self.plans.items(), reverse=True)
            if within is None or set(plan.owners) <= set(within)
        ][offset : offset + limit]
        return [
            PlanSummary(
                p.id,
                p.created_at,
                p.created_by,
                p.goal,
                p.owners,
                p.owner_kind,
                p.snapshot_id,
                count_states(i.state for i in p.items),
            )
            for p in chosen
        ]

    def open_plan_ids(self) -> list[int]:
        open_states = (ItemState.SUBMITTED, ItemState.PENDING)
        return [
            plan_id
            for plan_id in sorted(self.plans)
            if any(i.state in open_states for i in self.plans[plan_id].items)
        ]

    def change_states(
        self,
        plan_id: int,
        changes: Iterable[StateChange],
        *,
        at: datetime,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
    ) -> int:
        by_id = {c.item_id: c for c in changes}
        plan = self.plans[plan_id]
        log = self.event_log[plan_id]
        items = []
        for item in plan.items:
            change = by_id.get(item.id)
            if change is not None and change.snapshot_id is not None:
                item = replace(item, verified_snapshot_id=change.snapshot_id)
            if change is not None and item.state != change.to_state:
                log.append(
                    PlanEvent(
                        at,
                        actor,
                        action,
                        item.id,
                        item.state.value,
                        change.to_state.value,
                        change.details or {},
                    )
                )
                item = replace(item, state=change.to_state, updated_at=at)
            items.append(item)
        changed = sum(a.state != b.state for a, b in zip(plan.items, items, strict=True))
        self.plans[plan_id] = replace(plan, items=tuple(items))
        log.append(
            PlanEvent(at, actor, action, None, None, None, {**(details or {}), "changed": changed})
        )
        return changed


class FakeCursorRepository:
    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self.offsets: dict[str, tuple[str, datetime, int | None]] = {}  # source → offset, at, sid

    def offset(self, source: str) -> str | None:
        found = self.offsets.get(source)
        return found[0] if found is not None else None

    def advance(self, source: str, offset: str, snapshot_id: int | None) -> None:
        self.offsets[source] = (offset, self._clock(), snapshot_id)


class FakeUnitOfWork:
    """Every repository in memory; keeps what was committed, forgets the rest on leaving.

    ``commits`` counts the commits; ``committed`` says whether the last transaction committed.
    The repositories read the time from ``clock`` (by default the real one).
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self.registry = FakeRegistryRepository(clock)
        self.runs = FakeSyncRunRepository(clock)
        self.audits = FakeAuditRepository()
        self.fhir = FakeFhirRepository()
        self.tokens = FakeTokenRepository()
        self.decisions = FakeDecisionRepository()
        self.plans = FakePlanRepository()
        self.webhooks = FakeWebhookRepository(self.registry)
        self.cursors = FakeCursorRepository(clock)
        self.traffic = FakeTrafficRepository(self.decisions)
        self.commits = 0
        self.committed = False
        self._saved = self._state()

    def _repositories(self) -> tuple[object, ...]:
        return (
            self.registry,
            self.runs,
            self.audits,
            self.fhir,
            self.tokens,
            self.decisions,
            self.plans,
            self.webhooks,
            self.cursors,
            self.traffic,
        )

    def _state(self) -> list[dict[str, Any]]:
        return [
            {k: _copy(v) for k, v in vars(repo).items() if not k.startswith("_")}
            for repo in self._repositories()
        ]

    def __enter__(self) -> Self:
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        self._saved = self._state()
        self.commits += 1
        self.committed = True

    def rollback(self) -> None:
        for repo, state in zip(self._repositories(), self._saved, strict=True):
            vars(repo).update(_copy(state))
