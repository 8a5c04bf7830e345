"""What follows a newly stored snapshot, the same for ``soredi-sync sync`` and the daemon:
verify the open change plans on it, store its audit and adoption summary and the FHIR
directory's resource versions it makes, then the caller's own steps (the daemon queues the
snapshot's changes for the webhook subscriptions)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from soredi_sync.ports.records import RunStatus
from soredi_sync.services.audit import SummaryOutcome, record_summary
from soredi_sync.services.plans import VerifyResult, verify_open_plans

if TYPE_CHECKING:
    from soredi_sync.domain.audit import AuditContext
    from soredi_sync.domain.mcsd import DirectoryContext
    from soredi_sync.ports.storage import UnitOfWork

logger = logging.getLogger(__name__)

PLAN_VERIFICATION = "plan verification"
AUDIT_SUMMARY = "audit summary"
FHIR_VERSIONS = "FHIR directory versions"


class FinishedRun(Protocol):
    """A sync run as its use case reports it (``SyncOutcome``, ``IncrementalOutcome``)."""

    @property
    def status(self) -> RunStatus: ...


@dataclass(frozen=True, slots=True)
class Step:
    """A follow-up of the caller's, run after the built-in ones; ``name`` is for the log."""

    name: str
    run: Callable[[], object]


@dataclass(frozen=True, slots=True)
class StepFailure:
    step: str
    error: Exception


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What was done after a run: the plans verified, the summary stored, the steps that
    ended well (in order) and those that failed."""

    verified: tuple[VerifyResult, ...] = ()
    summary: SummaryOutcome | None = None
    done: tuple[str, ...] = ()
    failures: tuple[StepFailure, ...] = ()


def after_sync(
    uow_factory: Callable[[], UnitOfWork],
    audit_context: AuditContext,
    run: FinishedRun,
    *,
    actor: str = "sync",
    directory_context: DirectoryContext | None = None,
    then: Sequence[Step] = (),
) -> FollowUp:
    """Do what must follow ``run`` if it stored a snapshot (status ``succeeded``); nothing
    otherwise (failed, refused or unchanged).

    Each step is independent: one that raises is logged and recorded in
    :attr:`FollowUp.failures`, and neither undoes the sync (already committed) nor skips the
    steps after it.

    :param actor: who the plan verification is recorded as
    :param directory_context: given, the FHIR directory's versions of the snapshot are stored
    :param then: the caller's steps, run after the plan verification and the audit summary
    """
    if run.status is not RunStatus.SUCCEEDED:
        return FollowUp()
    verified: list[VerifyResult] = []
    summaries: list[SummaryOutcome] = []

    def plans() -> None:
        with uow_factory() as uow:
            verified.extend(verify_open_plans(uow, actor=actor))
        for result in verified:
            logger.info("Plan %d verified: %s", result.plan_id, result.counts)

    def summary() -> None:
        with uow_factory() as uow:
            summaries.append(record_summary(uow, audit_context))
        logger.info("Audit summary of snapshot %d stored", summaries[0].snapshot_id)

    def fhir_versions() -> None:
        from soredi_sync.services.fhir_directory import record_fhir_versions

        assert directory_context is not None
        with uow_factory() as uow:
            outcome = record_fhir_versions(uow, directory_context)
        logger.info(
            "FHIR directory of snapshot %d: %s new or changed, %s deleted",
            outcome.snapshot_id,
            outcome.new,
            outcome.deleted,
        )

    builtin = [Step(PLAN_VERIFICATION, plans), Step(AUDIT_SUMMARY, summary)]
    if directory_context is not None:
        builtin.append(Step(FHIR_VERSIONS, fhir_versions))
    done: list[str] = []
    failures: list[StepFailure] = []
    for step in (*builtin, *then):
        try:
            step.run()
        except Exception as exc:
            logger.exception("The %s after the sync failed; the sync itself stands", step.name)
            failures.append(StepFailure(step.name, exc))
        else:
            done.append(step.name)
    return FollowUp(
        verified=tuple(verified),
        summary=summaries[0] if summaries else None,
        done=tuple(done),
        failures=tuple(failures),
    )
