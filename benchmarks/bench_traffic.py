"""Traffic benchmark on the national sandbox profile: a month of a gateway's routing traffic in
the decision log, then what is asked of it.

    .venv/bin/python -m benchmarks.bench_traffic [--days 30] [--per-day N] [--database-url URL]

Syncs day 0 of the sandbox (generated into ``benchmarks/.data`` when missing) into a fresh
SQLite database (or the PostgreSQL database given, which must be empty), builds ``--days`` days
of traffic with the sandbox's generator (``sandbox traffic``'s questions, default volume:
about 29,000 a day on the national profile), decides them with the routing service and writes
their decision-log entries as the API does (in process: posting them over HTTP would measure
the API, which ``bench_route`` does), then times:

- the traffic count of the log (``traffic update``: every decision of the window);
- ``audit --by-traffic --window 30``: the audit and the receivers' traffic totals;
- ``cutover --traffic-window 30``: every logged question decided again for the cut-over date;
- ``plan traffic``: a switch-to-CareCommunication plan for every region, without and with it.

Targets (issue #18): both reports answer in seconds. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.bench_audit import DATA, timed
from soredi_sync.bootstrap import bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.schema import upgrade
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.ports.records import TokenRecord
from soredi_sync.sandbox.generate import generate
from soredi_sync.sandbox.traffic_mix import build_traffic
from soredi_sync.services.audit import run_audit
from soredi_sync.services.cutover_traffic import price_cutover, price_plan
from soredi_sync.services.decision_log import decision_entry, record_decisions
from soredi_sync.services.plans import create_plan
from soredi_sync.services.routing import Decided
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope
from soredi_sync.services.traffic import update_traffic, weigh_audit

CUTOVER = date(2027, 1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--keep", type=Path, help="leave the SQLite database in this file")
    args = parser.parse_args()

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "manifest.json").exists():
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)
    with tempfile.TemporaryDirectory(prefix="soredi-bench-traffic-") as tmp:
        kept = args.keep.resolve() if args.keep else Path(tmp) / "traffic.db"
        url = args.database_url or f"sqlite:///{kept}"
        upgrade(url)
        rows: list[tuple[str, float, str]] = []
        with bootstrap(Settings(database_url=url)) as app:
            outcome = sync_source(
                app.uow_factory, app.files_client(from_dir=sandbox / "day-000"), app.sync_config()
            )
            if not outcome.ok:
                raise SystemExit(f"sync failed: {outcome.error}")
            service = app.routing()
            resolver = service.resolver()
            reference = app.reference
            today = today_in_denmark()
            traffic = timed(
                rows,
                f"build {args.days} days of traffic (the generator)",
                lambda: build_traffic(
                    resolver.index.registry,
                    reference.message_types,
                    reference.audit_context.owner_kinds,
                    last_day=today,
                    days=args.days,
                    per_day=args.per_day,
                    seed=args.seed,
                ),
            )
            questions = [r.question() for day in traffic for r in day.requests]
            caller = TokenRecord(
                id=1,
                name="bench",
                scopes=frozenset({Scope.ROUTE_READ}),
                owners=frozenset(),
                created_at=datetime.now(UTC),
                revoked_at=None,
                last_used_at=None,
            )

            def log() -> int:
                logged = 0
                for start in range(0, len(questions), 1000):
                    batch = questions[start : start + 1000]
                    entries = [
                        decision_entry(q, a.decision, caller="bench", decided_at=a.decided_at)
                        for q, a in zip(batch, service.decide_batch(batch, caller), strict=True)
                        if isinstance(a, Decided)
                    ]
                    record_decisions(app.uow, entries)
                    logged += len(entries)
                return logged

            logged = timed(
                rows, "decide and log them (as the API does)", log, f"{len(questions):,} asked"
            )
            owners = app.traffic_owners()
            timed(
                rows,
                "traffic update (count the log)",
                lambda: update_traffic(app.uow, owners, datetime.now(UTC)),
                f"{logged:,} decisions",
            )

            def by_traffic() -> int:
                with app.uow() as uow:
                    report = run_audit(uow, reference.audit_context)
                    weighed = weigh_audit(uow, report, 30, today)
                return sum(1 for w in weighed.weighed if w.cost)

            costing = timed(rows, "audit --by-traffic --window 30", by_traffic)
            rows[-1] = (*rows[-1][:2], f"{costing:,} findings cost messages")

            def priced() -> str:
                with app.uow() as uow:
                    found = price_cutover(
                        uow, resolver, owners, CUTOVER, window_days=30, today=today
                    )
                return f"{found.lost:,} of {found.delivered:,} lost, {found.lost_per_day:,.0f}/day"

            note = timed(rows, f"cutover --date {CUTOVER} --traffic-window 30", priced)
            rows[-1] = (*rows[-1][:2], note)

            def plan() -> str:
                with app.uow() as uow:
                    created = create_plan(
                        uow,
                        reference.audit_context,
                        actor="bench",
                        owner_kind="region",
                        switch_to="carecommunication",
                    )
                    uow.commit()
                started = time.perf_counter()
                with app.uow() as uow:
                    found = price_plan(uow, resolver, created, window_days=30, today=today)
                rows.append(
                    (
                        "plan traffic (every region switches)",
                        time.perf_counter() - started,
                        f"{found.messages:,} messages to {len({i.gln for i in created.items}):,}"
                        " GLNs",
                    )
                )
                return ""

            plan()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine = "PostgreSQL" if args.database_url else "SQLite"
    lines = [
        f"machine: {platform.machine()}, Python {platform.python_version()}, {engine}",
        f"profile {args.profile} seed {args.seed}; peak RSS {peak:,.0f} MB",
        "",
        "| step | seconds | |",
        "|---|---:|---|",
        *(f"| {label} | {seconds:.2f} | {note} |" for label, seconds, note in rows),
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
