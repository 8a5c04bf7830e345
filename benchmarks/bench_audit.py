"""Audit benchmark on the national sandbox profile, in one process.

    .venv/bin/python -m benchmarks.bench_audit [--profile national] [--seed 1]

Syncs day 0 and day 1 of the sandbox (generated into ``benchmarks/.data`` when missing) into a
fresh SQLite database, then times, on the current snapshot read back from the database:

- full audit: ``load_registry`` + every audit rule (target ≤ 10 s);
- audit since the previous snapshot: both registries loaded and audited, then compared;
- adoption over both snapshots: ``load_registry`` + ``adoption`` for each;
- the audit summary the daemon stores after each sync (``record_summary``: load, every rule,
  adoption in all four dimensions, one row written);
- cut-over for 2027-01-04: every correspondence receiver resolved by the routing resolver for
  each sender syntax (index built from the loaded registry, which is timed separately).

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from soredi_sync.bootstrap import bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.schema import upgrade
from soredi_sync.domain.audit import adoption, audit, compare
from soredi_sync.domain.routing import Resolver, RoutingIndex, SnapshotRef
from soredi_sync.sandbox.generate import generate
from soredi_sync.services.audit import record_summary
from soredi_sync.services.cutover import cutover
from soredi_sync.services.sync import sync_source

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data"
CUTOVER = date(2027, 1, 4)
T = TypeVar("T")


def timed(rows: list[tuple[str, float, str]], label: str, fn: Callable[[], T], note: str = "") -> T:
    started = time.perf_counter()
    result = fn()
    rows.append((label, time.perf_counter() - started, note))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "day-001").exists():
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        with bootstrap(Settings(database_url=url)) as app:
            for day in (0, 1):
                outcome = timed(
                    rows,
                    f"sync day {day} (setup)",
                    lambda day=day: sync_source(  # type: ignore[misc]
                        app.uow_factory,
                        app.files_client(from_dir=sandbox / f"day-{day:03d}"),
                        app.sync_config(),
                    ),
                )
                assert outcome.ok, outcome.error
            context = app.reference.audit_context
            with app.uow() as uow:
                current = uow.registry.current_snapshot()
                assert current is not None
                previous = uow.registry.get_snapshot(current.id - 1)
                assert previous is not None

                def full_audit() -> int:
                    registry = uow.registry.load_registry(current.id)
                    return len(audit(registry, context, current.effective_date))

                found = timed(rows, "full audit (load_registry + audit)", full_audit)
                rows[-1] = (*rows[-1][:2], f"{found} findings")

                def audit_since() -> tuple[int, int]:
                    now = audit(
                        uow.registry.load_registry(current.id), context, current.effective_date
                    )
                    before = audit(
                        uow.registry.load_registry(previous.id), context, previous.effective_date
                    )
                    changes = compare(before, now)
                    return len(changes.new), len(changes.resolved)

                new, resolved = timed(rows, "audit since previous snapshot", audit_since)
                rows[-1] = (*rows[-1][:2], f"{new} new, {resolved} resolved")

                def adoption_both() -> int:
                    total = 0
                    for info in (previous, current):
                        registry = uow.registry.load_registry(info.id)
                        total += adoption(registry, context, info.effective_date)["all"].total
                    return total

                timed(rows, "adoption over both snapshots", adoption_both, "2 snapshots")
                timed(
                    rows,
                    "audit summary after a sync (daemon follow-up)",
                    lambda: record_summary(uow, context),
                    "audit + adoption in 4 dimensions, stored",
                )
                registry = timed(
                    rows,
                    "load_registry (cut-over setup, not in the row below)",
                    lambda: uow.registry.load_registry(current.id),
                )
            index = RoutingIndex.build(SnapshotRef(current.id, current.taken_at), registry)
            resolver = Resolver(index, app.reference.routing_policy, app.reference.message_types)
            report = timed(
                rows,
                f"cut-over for {CUTOVER}",
                lambda: cutover(
                    resolver, CUTOVER, audit_context=context, today=current.effective_date
                ),
            )
            counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
            rows[-1] = (*rows[-1][:2], f"{report.receivers} receivers; lost: {counts}")
            units, glns = len(registry.units), len(registry.glns)

    lines = [
        f"Audit benchmark, {args.profile} seed {args.seed} ({units} units, {glns} GLNs), "
        f"SQLite, Python {platform.python_version()}, {platform.machine()}",
        "",
        "| step | seconds | notes |",
        "|---|---:|---|",
        *(f"| {label} | {seconds:.2f} | {note} |" for label, seconds, note in rows),
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
