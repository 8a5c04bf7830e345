"""A sync held inside its write transaction: the new snapshot flushed, not yet committed.

:func:`pause_before_storing` gives ``sync_source`` a unit-of-work factory that, at the "store
snapshot" stage, flushes everything the store wrote (versions, change events, the run marked
succeeded) into the open transaction and calls back before committing it. The API-reads test
pauses there in a thread; as a program it prints what the transaction holds and waits to be
killed, for the ``kill -9`` test:

    python -m tests.support.faults.paused_sync DATABASE_URL BASE_URL
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from sqlalchemy import func, select

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.models import CapabilityVersion, ChangeEvent, Snapshot
from soredi_sync.db.unit_of_work import SqlAlchemyUnitOfWork
from soredi_sync.services.sync import sync_source

WRITTEN = "WRITTEN"


def pause_before_storing(
    app: App, pause: Callable[[SqlAlchemyUnitOfWork], None]
) -> tuple[Callable[[], SqlAlchemyUnitOfWork], Callable[[str], None]]:
    """A unit-of-work factory and a stage callback for ``sync_source`` that call ``pause``
    inside the store transaction, after flushing it and before committing it."""
    stage = {"now": ""}

    def on_stage(name: str) -> None:
        stage["now"] = name

    def uow_factory() -> SqlAlchemyUnitOfWork:
        uow = app.uow()
        commit = uow.commit

        def commit_after_pause() -> None:
            if stage["now"] == "store snapshot":
                uow.session.flush()
                pause(uow)
            commit()

        uow.commit = commit_after_pause  # type: ignore[method-assign]
        return uow

    return uow_factory, on_stage


def _report_and_hang(uow: SqlAlchemyUnitOfWork) -> None:
    session = uow.session
    counts = " ".join(
        f"{model.__tablename__}={session.scalar(select(func.count()).select_from(model))}"
        for model in (Snapshot, CapabilityVersion, ChangeEvent)
    )
    sys.stdout.write(f"{WRITTEN} {counts}\n")
    sys.stdout.flush()
    time.sleep(600)


def main(argv: list[str]) -> int:
    database_url, base_url = argv
    with bootstrap(Settings(database_url=database_url)) as app:
        uow_factory, on_stage = pause_before_storing(app, _report_and_hang)
        sync_source(
            uow_factory,
            app.files_client(base_url=base_url),
            app.sync_config(),
            on_stage=on_stage,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
