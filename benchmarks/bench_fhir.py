"""FHIR directory benchmark on the national sandbox profile: versions, export, index, reads.

    .venv/bin/python -m benchmarks.bench_fhir [--database-url URL] [--profile national]
        [--seed 1] [--repeat 5]

Into a fresh database (SQLite unless ``--database-url`` names a PostgreSQL one), syncs day 0 of
the sandbox (generated into ``benchmarks/.data`` when missing), then runs each measured step in
a fresh child process, so its peak RSS is its own:

- versions: the sync's follow-up step that renders the snapshot and stores its resource
  versions (day 0: every resource is new; day 1, after the next sync: only the changes);
- export: ``soredi-sync export fhir`` of the current snapshot (NDJSON per type, sizes);
- reads: the index of the current versions built once (what the API's warm-up does), then
  the ``/fhir`` requests an mCSD client makes, each asked ``--repeat`` times after once (median
  of the server's time, through the ASGI app in the process), and a whole mirror of the
  directory paged at ``_count=1000`` the way an update client starts.

Targets: export <= 30 s, the index built in <= 10 s, peak RSS of the versions and the export
(steps of the sync's process) <= 400 MB, every read's median <= 300 ms. The reads step's own
peak is shown without a target: its client decodes every page in the same process.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import bench_sync
from benchmarks.bench_sync import _emit, _fresh_database, _peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data"
EXPORT_TARGET_S = 30.0
BUILD_TARGET_S = 10.0
RSS_TARGET_MB = 400.0
READ_TARGET_MS = 300.0


def step_sync(database_url: str, day_dir: Path) -> None:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.services.sync import sync_source

    with bootstrap(Settings(database_url=database_url)) as app:
        started = time.perf_counter()
        outcome = sync_source(
            app.uow_factory, app.files_client(from_dir=day_dir), app.sync_config()
        )
        if not outcome.ok:
            raise SystemExit(f"sync of {day_dir} failed: {outcome.error}")
        _emit({"step": "sync", "seconds": time.perf_counter() - started})


def step_versions(database_url: str) -> None:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.services.fhir_directory import record_fhir_versions

    with bootstrap(Settings(database_url=database_url)) as app, app.uow() as uow:
        started = time.perf_counter()
        outcome = record_fhir_versions(uow, app.reference.directory_context)
        _emit(
            {
                "step": "versions",
                "seconds": time.perf_counter() - started,
                "new": outcome.new,
                "deleted": outcome.deleted,
            }
        )


def step_export(database_url: str, out: Path) -> None:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.services.fhir_directory import ensure_versions, export_ndjson

    with bootstrap(Settings(database_url=database_url)) as app, app.uow() as uow:
        started = time.perf_counter()
        snapshot = ensure_versions(uow, app.reference.directory_context)
        files = export_ndjson(uow, out, at_snapshot=snapshot.id)
        _emit(
            {
                "step": "export",
                "seconds": time.perf_counter() - started,
                "files": {f.resource_type: [f.count, f.size] for f in files},
            }
        )


def step_reads(database_url: str, repeat: int, since: str) -> None:
    from fastapi.testclient import TestClient

    from soredi_sync.api import create_app
    from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.observability.metrics import Metrics
    from soredi_sync.services.tokens import Scope, create_token

    with bootstrap(Settings(database_url=database_url)) as app:
        token = create_token(app.uow, [Scope.REGISTRY_READ], (), "bench").token
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        index = app.fhir_directory().index()
        build = time.perf_counter() - started
        build_peak = _peak_rss_mb()
        organizations = index.resources["Organization"]
        region = max(
            (o for o in organizations.values() if o.part_of is None),
            key=lambda o: len(index.children.get(o.id, ())),
        )
        gln = next(iter(index.resources["Endpoint"]))
        api = create_app(
            app, ApiSettings(), DecisionLogSettings(), Metrics(process_collectors=False)
        )
        reads = [
            ("a page of 1,000 Organizations", "/fhir/Organization?_count=1000"),
            ("a page of 1,000 Endpoints", "/fhir/Endpoint?_count=1000"),
            ("read one Organization", f"/fhir/Organization/{region.id}"),
            ("Endpoint by identifier (GLN)", f"/fhir/Endpoint?identifier={gln}"),
            ("Organization by name (starts with), 100", "/fhir/Organization?name=hospital"),
            ("Organization by name:contains, 100", "/fhir/Organization?name:contains=kirurgi"),
            (
                "a region's units with their Endpoints",
                f"/fhir/Organization?partof={region.id}&_include=Organization:endpoint&_count=1000",
            ),
            ("history of day 1, first 1,000", f"/fhir/_history?_since={since}&_count=1000"),
            ("Organization history, first 1,000", "/fhir/Organization/_history?_count=1000"),
            ("one Endpoint's history", f"/fhir/Endpoint/{gln}/_history"),
            (
                "vread: an Endpoint's version",
                f"/fhir/Endpoint/{gln}/_history/{index.resources['Endpoint'][gln].version_id}",
            ),
        ]
        rows = []
        with TestClient(api) as client:
            for label, path in reads:
                times = []
                size = 0
                for _ in range(repeat + 1):
                    asked = time.perf_counter()
                    answer = client.get(path, headers=headers)
                    times.append((time.perf_counter() - asked) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:500]}")
                    size = len(answer.content)
                rows.append([label, times[0], statistics.median(times[1:]), size])
            # A mirror of the whole directory, as an update client starts: by search, and
            # by the whole history.
            walks = [
                _walk(
                    client,
                    headers,
                    [f"/fhir/{t}?_count=1000" for t in ("Organization", "Endpoint")],
                ),
                _walk(client, headers, ["/fhir/_history?_count=1000"]),
            ]
        _emit(
            {
                "step": "reads",
                "build_seconds": build,
                "build_peak_rss_mb": build_peak,
                "rows": rows,
                "walks": walks,
            }
        )


def _walk(client: Any, headers: dict[str, str], starts: list[str]) -> list[float]:
    """Every page from each start by ``next`` links: seconds, pages, entries, a page's median
    and max (ms)."""
    started = time.perf_counter()
    entries = 0
    times: list[float] = []
    for start in starts:
        url: str | None = start
        while url is not None:
            asked = time.perf_counter()
            bundle = client.get(url, headers=headers).json()
            times.append((time.perf_counter() - asked) * 1000)
            entries += len(bundle.get("entry", ()))
            url = next(
                (
                    link["url"].removeprefix("http://testserver")
                    for link in bundle.get("link", ())
                    if link["relation"] == "next"
                ),
                None,
            )
    return [
        time.perf_counter() - started,
        len(times),
        entries,
        statistics.median(times),
        max(times),
    ]


def _child(*args: str) -> dict[str, Any]:
    return bench_sync._child(*args, module="benchmarks.bench_fhir")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--step", choices=["sync", "versions", "export", "reads"], help=argparse.SUPPRESS
    )
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step == "sync":
        step_sync(args.database_url, Path(args.dir))
        return
    if args.step == "versions":
        step_versions(args.database_url)
        return
    if args.step == "export":
        step_export(args.database_url, Path(args.dir))
        return
    if args.step == "reads":
        step_reads(args.database_url, args.repeat, args.since)
        return

    from soredi_sync.sandbox.generate import generate

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "day-001").exists():
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)

    with tempfile.TemporaryDirectory(prefix="soredi-bench-") as tmp:
        url = _fresh_database(args.database_url, Path(tmp))
        db = ("--database-url", url)
        _child("--step", "sync", *db, "--dir", str(sandbox / "day-000"))
        day0 = _child("--step", "versions", *db)
        since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        _child("--step", "sync", *db, "--dir", str(sandbox / "day-001"))
        day1 = _child("--step", "versions", *db)
        export = _child("--step", "export", *db, "--dir", str(Path(tmp) / "export"))
        reads = _child("--step", "reads", *db, "--repeat", str(args.repeat), "--since", since)

    engine = "PostgreSQL" if args.database_url else "SQLite"
    files = export["files"]
    search_walk, history_walk = reads["walks"]
    peak = max(s["peak_rss_mb"] for s in (day0, day1, export))
    slowest = max(row[2] for row in reads["rows"])
    lines = [
        f"FHIR directory benchmark, {args.profile} seed {args.seed}, {engine}, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.repeat} repeats",
        "",
        "| step | seconds | peak RSS (MB) | what |",
        "|---|---:|---:|---|",
        f"| versions of day 0 (every resource new) | {day0['seconds']:.2f} | "
        f"{day0['peak_rss_mb']:.0f} | {_counts(day0['new'])} new |",
        f"| versions of day 1 (the changes) | {day1['seconds']:.2f} | "
        f"{day1['peak_rss_mb']:.0f} | {_counts(day1['new'])} new, "
        f"{_counts(day1['deleted'])} deleted |",
        f"| export fhir (NDJSON) | {export['seconds']:.2f} | {export['peak_rss_mb']:.0f} | "
        + ", ".join(
            f"{t}.ndjson {count:,} resources, {size / 1e6:.1f} MB"
            for t, (count, size) in files.items()
        )
        + " |",
        f"| index of the current versions (API warm-up) | {reads['build_seconds']:.2f} | "
        f"{reads['build_peak_rss_mb']:.0f} | {reads['peak_rss_mb']:.0f} MB at the end of the "
        "requests below |",
        _walk_row("mirror by search: every Organization and Endpoint", search_walk),
        _walk_row("mirror by history: every version of both", history_walk),
        "",
        "| request | first (ms) | median (ms) | bytes | <= 300 ms |",
        "|---|---:|---:|---:|---|",
        *(
            f"| {label} | {first:,.1f} | {median:,.1f} | {size:,} | "
            f"{'yes' if median <= READ_TARGET_MS else 'NO'} |"
            for label, first, median, size in reads["rows"]
        ),
        "",
        f"export: {export['seconds']:.2f} s (target <= {EXPORT_TARGET_S:.0f} s); "
        f"index build: {reads['build_seconds']:.2f} s (target <= {BUILD_TARGET_S:.0f} s); "
        f"peak RSS of the versions and the export: {peak:.0f} MB "
        f"(target <= {RSS_TARGET_MB:.0f} MB); "
        f"slowest read median: {slowest:.1f} ms (target <= {READ_TARGET_MS:.0f} ms)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def _walk_row(label: str, walk: list[float]) -> str:
    seconds, pages, entries, median, slowest = walk
    return (
        f"| {label}, _count=1000 | {seconds:.2f} | | {pages:.0f} pages, {entries:,.0f} entries; "
        f"a page's median {median:.0f} ms, max {slowest:.0f} ms |"
    )


def _counts(by_type: dict[str, int]) -> str:
    return " + ".join(f"{n:,} {t}" for t, n in by_type.items())


if __name__ == "__main__":
    main()
