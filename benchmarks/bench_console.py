"""Web console benchmark on the national sandbox profile: every page's server time.

    .venv/bin/python -m benchmarks.bench_console [--database-url URL] [--profile national]
        [--seed 1] [--repeat 5]

Syncs day 0 and day 1 of the sandbox (generated into ``benchmarks/.data`` when missing) into a
fresh database (SQLite unless ``--database-url`` names a PostgreSQL one), stores each
snapshot's audit summary as the daemon does after a sync, makes a change plan, and issues two
tokens: an operator's (every scope) and a regional auditor's (restricted to the largest
region). Then, for each token, it signs in to the console of an API app run in this process
(lifespan and all) and asks for every page.

Each page is asked once "cold" (the first time in a fresh process, before any warm-up: what
a request waits for when it comes before the snapshot was prepared; the operator asks first, so
the auditor's first requests find the process's caches filled) and then
``--repeat`` times; the figure is the server's own time from the page's ``Server-Timing``
header (routing, the handler and rendering; not the client). The warm-up is the one the
served process runs for each new snapshot (``api/warmup.py``), timed on its own.

Target: every page's median over the repeats <= 300 ms. Downloads (CSV, XLSX of every finding)
are listed too, without a target: they are files, not pages. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from benchmarks.bench_sync import _fresh_database
from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.api.warmup import DEFAULT_JOBS, CacheWarmer
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import DecisionLogSettings, Settings
from soredi_sync.domain.model import GlnMode
from soredi_sync.observability.metrics import Metrics
from soredi_sync.sandbox.generate import generate
from soredi_sync.services.audit import record_summary
from soredi_sync.services.plans import create_plan
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope, create_token
from soredi_sync.ui import warm_jobs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data"
TARGET_MS = 300.0
CUTOVER = date(2027, 1, 4)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMING = re.compile(r"app;dur=([\d.]+)")


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    download: bool = False
    form: dict[str, str] | None = None  # POSTed (with the page's CSRF token) instead of GET


@dataclass(frozen=True)
class Row:
    who: str
    page: Page
    cold_ms: float
    median_ms: float
    max_ms: float
    size: int

    @property
    def met(self) -> bool:
        return self.page.download or self.median_ms <= TARGET_MS


def _sign_in(client: TestClient, token: str) -> None:
    page = client.get("/ui/login")
    found = CSRF.search(page.text)
    assert found, "no CSRF token on the sign-in page"
    answer = client.post(
        "/ui/login", data={"csrf_token": found.group(1), "token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def _ask(client: TestClient, page: Page) -> tuple[float, int]:
    if page.form is None:
        answer = client.get(page.path, follow_redirects=False)
    else:
        found = CSRF.search(client.get(page.path).text)
        assert found, f"no CSRF token on {page.path}"
        answer = client.post(
            page.path, data={"csrf_token": found.group(1), **page.form}, follow_redirects=False
        )
    if answer.status_code not in (200, 303):  # a search naming one GLN goes to its page
        raise SystemExit(f"{page.path}: {answer.status_code}\n{answer.text[:2000]}")
    timing = TIMING.search(answer.headers.get("server-timing", ""))
    if timing is None:
        raise SystemExit(f"{page.path}: no Server-Timing header")
    return float(timing.group(1)), len(answer.content)


def _measure(client: TestClient, who: str, pages: list[Page], repeat: int) -> list[Row]:
    rows = []
    for page in pages:
        cold, size = _ask(client, page)
        times = [_ask(client, page)[0] for _ in range(repeat)]
        rows.append(Row(who, page, cold, statistics.median(times), max(times), size))
    return rows


def _subjects(app: App) -> tuple[str, str, str, str]:
    """The largest region (by units), a unit of it with a GLN of its own and that GLN, and a
    name fragment to search for."""
    index = app.routing().resolver().index
    units = index.registry.units
    regions = [
        u for u in units.values() if u.name.startswith("Region ") and u.parent_sor_id is None
    ]
    size = {r.sor_id: 0 for r in regions}
    for unit in units.values():
        if unit.owner_sor_id in size:
            size[unit.owner_sor_id] += 1
    region = max(regions, key=lambda r: size[r.sor_id])
    carrier = next(
        u
        for u in units.values()
        if u.owner_sor_id == region.sor_id
        and u.sor_id != region.sor_id
        and u.gln_mode is GlnMode.OWN
        and u.gln
        and u.gln in index.registry.glns
    )
    assert carrier.gln is not None
    return region.sor_id, carrier.sor_id, carrier.gln, "Hospital"


def _pages(
    region: str, unit: str, gln: str, fragment: str, since: int, plan_id: int, *, operator: bool
) -> list[Page]:
    pages = [
        Page("overview", "/ui/"),
        Page("registry: search by name", f"/ui/registry?q={fragment}"),
        Page("registry: search by GLN", f"/ui/registry?q={gln}"),
        Page("registry: a region (the whole tree)", f"/ui/registry/units/{region}"),
        Page("registry: a unit", f"/ui/registry/units/{unit}"),
        Page("registry: a GLN", f"/ui/registry/glns/{gln}"),
        Page("audit: first page", "/ui/audit"),
        Page("audit: errors, sorted by GLN", "/ui/audit?severity=error&sort=gln"),
        Page("audit: new and resolved since day 0", f"/ui/audit?since={since}"),
        Page("audit: CSV of every finding", "/ui/audit/findings.csv", download=True),
        Page("audit: XLSX of every finding", "/ui/audit/findings.xlsx", download=True),
        Page("adoption: in all", "/ui/adoption"),
        Page("adoption: per region", "/ui/adoption?by=region"),
        Page("adoption: per VANS", "/ui/adoption?by=vans"),
        Page("cut-over: its default date", "/ui/cutover"),
        Page(f"cut-over: {CUTOVER}", f"/ui/cutover?date={CUTOVER}"),
        Page("routing: the form", "/ui/route"),
        Page(
            "routing: a decision",
            "/ui/route",
            form={
                "kind": "question",
                "receiver_gln": gln,
                "business_message": "correspondence",
                "sender_syntax": "oioxml",
            },
        ),
    ]
    if operator:
        pages += [
            Page("change plans: the list", "/ui/plans"),
            Page("change plans: a plan", f"/ui/plans/{plan_id}"),
        ]
    return pages


def _timed(label: str, setup: list[tuple[str, float]], fn: Callable[[], object]) -> None:
    started = time.perf_counter()
    fn()
    setup.append((label, time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "day-001").exists():
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)

    setup: list[tuple[str, float]] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh_database(args.database_url, Path(tmp))
        engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        with bootstrap(Settings(database_url=url)) as app:
            context = app.reference.audit_context
            for day in (0, 1):
                client = app.files_client(from_dir=sandbox / f"day-{day:03d}")

                def sync(client=client) -> None:  # type: ignore[no-untyped-def]
                    outcome = sync_source(app.uow_factory, client, app.sync_config())
                    assert outcome.ok, outcome.error
                    with app.uow() as uow:
                        record_summary(uow, context)

                _timed(f"sync day {day} + its audit summary", setup, sync)
            with app.uow() as uow:
                snapshots = sorted(uow.registry.list_snapshots(), key=lambda s: s.id)
            region, unit, gln, fragment = _subjects(app)
            with app.uow() as uow:
                plan = create_plan(
                    uow, context, actor="bench", owners=[region], switch_to="carecommunication"
                )
            operator = create_token(app.uow, list(Scope), (), "bench operator").token
            auditor = create_token(
                app.uow,
                (Scope.REGISTRY_READ, Scope.AUDIT_READ, Scope.ROUTE_READ),
                (region,),
                "bench regional auditor",
            ).token
            api = create_app(
                app,
                ApiSettings(),
                DecisionLogSettings(),
                Metrics(process_collectors=False),
            )
            who_pages = [
                (
                    "operator",
                    operator,
                    _pages(region, unit, gln, fragment, snapshots[0].id, plan.id, operator=True),
                ),
                (
                    "regional auditor",
                    auditor,
                    _pages(region, unit, gln, fragment, snapshots[0].id, plan.id, operator=False),
                ),
            ]
            # Cold: a fresh process's first requests, before anything was prepared.
            with TestClient(api) as client:
                for who, token, pages in who_pages:
                    client.cookies.clear()
                    _sign_in(client, token)
                    for page in pages:
                        cold, _size = _ask(client, page)
                        rows.append(Row(who, page, cold, 0.0, 0.0, 0))
            cold_by_key = {(r.who, r.page.label): r.cold_ms for r in rows}
            rows = []
            # The served process's warm-up of the current snapshot, in a process that has it
            # all to do again (new caches).
            with bootstrap(Settings(database_url=url)) as fresh:
                warmer = CacheWarmer(fresh, 3600, (*DEFAULT_JOBS, *warm_jobs()))
                _timed("warm-up of the current snapshot (api/warmup.py)", setup, warmer.warm_once)
                api = create_app(
                    fresh, ApiSettings(), DecisionLogSettings(), Metrics(process_collectors=False)
                )
                with TestClient(api) as client:
                    for who, token, pages in who_pages:
                        client.cookies.clear()
                        _sign_in(client, token)
                        for row in _measure(client, who, pages, args.repeat):
                            cold = cold_by_key[(row.who, row.page.label)]
                            rows.append(
                                Row(row.who, row.page, cold, row.median_ms, row.max_ms, row.size)
                            )
            registry_size = ""
            with app.uow() as uow:
                current = uow.registry.current_snapshot()
                assert current is not None
                loaded = uow.registry.load_registry(current.id)
                registry_size = f"{len(loaded.units):,} units, {len(loaded.glns):,} GLNs"

    lines = [
        f"Console benchmark, {args.profile} seed {args.seed} ({registry_size}), {engine}, "
        f"Python {platform.python_version()}, {platform.machine()}; {args.repeat} repeats",
        "",
        "| setup step | seconds |",
        "|---|---:|",
        *(f"| {label} | {seconds:.2f} |" for label, seconds in setup),
        "",
        "| token | page | first request, nothing prepared (ms) | after the warm-up: median (ms) "
        "| max (ms) | bytes | <= 300 ms |",
        "|---|---|---:|---:|---:|---:|---|",
        *(
            f"| {r.who} | {r.page.label} | {r.cold_ms:,.0f} | {r.median_ms:,.1f} | "
            f"{r.max_ms:,.1f} | {r.size:,} | "
            f"{'(download)' if r.page.download else 'yes' if r.met else 'NO'} |"
            for r in rows
        ),
        "",
        f"slowest page median: {max(r.median_ms for r in rows if not r.page.download):.1f} ms "
        f"(target <= {TARGET_MS:.0f} ms); pages over target: "
        f"{sum(not r.met for r in rows)}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
