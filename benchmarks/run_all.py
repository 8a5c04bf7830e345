"""Every benchmark of the project in one script run, as one Markdown report.

    .venv/bin/python -m benchmarks.run_all [--postgres URL] [--seconds 10] > report.md

Runs, one after the other and each in fresh child processes (so every peak RSS is its own):
the sync benchmark on SQLite (and on PostgreSQL with ``--postgres``), the routing benchmark
(in-process resolver and HTTP through ``wrk``), the audit benchmark, and the web console's
page times and the FHIR directory's steps (SQLite, and PostgreSQL with ``--postgres``), all on
the national sandbox profile (generated once into ``benchmarks/.data``). Prints the machine,
the command, each benchmark's table and a summary of every target with its measured ratio.
Exits 1 when a target is missed, so a regression is visible; the tables are printed either way.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool


def _run(*args: str) -> str:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{' '.join(args)} failed with exit {done.returncode}")
    sys.stderr.write(f"{' '.join(args)}: {time.perf_counter() - started:.0f} s\n")
    return done.stdout


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"no {pattern!r} in the benchmark output:\n{text}")
    return float(match.group(1).replace(",", ""))


def _sync_targets(label: str, text: str) -> list[Target]:
    ratio = _number(r"\| ([\d.]+)x bare parse \(target <= 2\.2x\)", text)
    unchanged = _number(r"\| unchanged re-sync \(304\) \| ([\d.]+) \|", text)
    peak = _number(r"peak RSS of any sync step: (\d+) MB", text)
    return [
        Target(f"full sync vs bare parse, {label} (<= 2.2x)", f"{ratio:.2f}x", ratio <= 2.2),
        Target(f"unchanged re-sync, {label} (<= 2 s)", f"{unchanged:.2f} s", unchanged <= 2),
        Target(f"peak RSS of any sync step, {label} (<= 300 MB)", f"{peak:.0f} MB", peak <= 300),
    ]


def _route_targets(text: str) -> list[Target]:
    p99 = _number(r"resolver p99 per decision \| ([\d.]+) us", text)
    targets = [Target("resolver p99 (<= 200 us)", f"{p99:.1f} us", p99 <= 200)]
    if "decisions/s" in text:
        post = _number(r"route / bare POST \| (\d+)%", text)
        batch = _number(r"batch \(\d+ questions\).*?\| ([\d,]+) decisions/s", text)
        scaling = _number(r"2 workers / 1 worker \| ([\d.]+)x", text)
        latency = _number(r"p50 / p99 / p99.9 \| [\d.]+ / ([\d.]+) /", text)
        targets += [
            Target("route vs bare POST, one worker (>= 75%)", f"{post:.0f}%", post >= 75),
            Target(
                "batch decisions/s, one worker (>= 20,000/s)", f"{batch:,.0f}/s", batch >= 20000
            ),
            Target(
                "p99 at 1,000 requests/s, open loop (<= 5 ms)", f"{latency:.2f} ms", latency <= 5
            ),
            Target("2 workers vs 1 (>= 1.7x)", f"{scaling:.2f}x", scaling >= 1.7),
        ]
    return targets


def _audit_targets(text: str) -> list[Target]:
    full = _number(r"\| full audit \(load_registry \+ audit\) \| ([\d.]+) \|", text)
    return [Target("full audit (<= 10 s)", f"{full:.2f} s", full <= 10)]


def _console_targets(label: str, text: str) -> list[Target]:
    slowest = _number(r"slowest page median: ([\d.]+) ms", text)
    over = _number(r"pages over target: (\d+)", text)
    return [
        Target(
            f"console: every page's median server time, {label} (<= 300 ms)",
            f"slowest {slowest:.0f} ms",
            over == 0 and slowest <= 300,
        )
    ]


def _fhir_targets(label: str, text: str) -> list[Target]:
    export = _number(r"export: ([\d.]+) s", text)
    build = _number(r"index build: ([\d.]+) s", text)
    peak = _number(r"peak RSS of the versions and the export: (\d+) MB", text)
    slowest = _number(r"slowest read median: ([\d.]+) ms", text)
    return [
        Target(f"FHIR export fhir, national, {label} (<= 30 s)", f"{export:.1f} s", export <= 30),
        Target(f"FHIR index build, {label} (<= 10 s)", f"{build:.1f} s", build <= 10),
        Target(
            f"FHIR versions/export peak RSS, {label} (<= 400 MB)", f"{peak:.0f} MB", peak <= 400
        ),
        Target(
            f"FHIR reads: slowest median, {label} (<= 300 ms)", f"{slowest:.0f} ms", slowest <= 300
        ),
    ]


def _traffic_targets(text: str) -> list[Target]:
    audit = _number(r"\| audit --by-traffic --window 30 \| ([\d.]+) \|", text)
    cutover = _number(r"\| cutover --date \S+ --traffic-window 30 \| ([\d.]+) \|", text)
    return [
        Target("audit --by-traffic, a national month (<= 30 s)", f"{audit:.1f} s", audit <= 30),
        Target(
            "cutover --traffic-window 30, a national month (<= 30 s)",
            f"{cutover:.1f} s",
            cutover <= 30,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="also run the sync benchmark on this database URL")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    parser.add_argument("--skip-http", action="store_true", help="no wrk (not installed)")
    args = parser.parse_args()

    started = time.perf_counter()
    sections: list[tuple[str, str]] = []
    targets: list[Target] = []
    sqlite = _run("benchmarks.bench_sync")
    sections.append(("Sync, SQLite", sqlite))
    targets += _sync_targets("SQLite", sqlite)
    if args.postgres:
        pg = _run("benchmarks.bench_sync", "--database-url", args.postgres)
        sections.append(("Sync, PostgreSQL", pg))
        targets += _sync_targets("PostgreSQL", pg)
    route_args = ["benchmarks.bench_route", "--seconds", str(args.seconds)]
    route = _run(*route_args, *(["--skip-http"] if args.skip_http else []))
    sections.append(("Routing", route))
    targets += _route_targets(route)
    audit = _run("benchmarks.bench_audit")
    sections.append(("Audit", audit))
    targets += _audit_targets(audit)
    console = _run("benchmarks.bench_console")
    sections.append(("Web console, SQLite", console))
    targets += _console_targets("SQLite", console)
    if args.postgres:
        console_pg = _run("benchmarks.bench_console", "--database-url", args.postgres)
        sections.append(("Web console, PostgreSQL", console_pg))
        targets += _console_targets("PostgreSQL", console_pg)
    fhir = _run("benchmarks.bench_fhir")
    sections.append(("FHIR directory, SQLite", fhir))
    targets += _fhir_targets("SQLite", fhir)
    if args.postgres:
        fhir_pg = _run("benchmarks.bench_fhir", "--database-url", args.postgres)
        sections.append(("FHIR directory, PostgreSQL", fhir_pg))
        targets += _fhir_targets("PostgreSQL", fhir_pg)

    traffic = _run("benchmarks.bench_traffic")
    sections.append(("Traffic, SQLite", traffic))
    targets += _traffic_targets(traffic)

    command = "python -m benchmarks.run_all " + " ".join(sys.argv[1:])
    out = [
        f"# Benchmark run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command.strip()}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}",
        f"- wall time of the whole run: {time.perf_counter() - started:.0f} s",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
        *(f"| {t.name} | {t.measured} | {'yes' if t.met else 'NO'} |" for t in targets),
    ]
    for title, text in sections:
        out += ["", f"## {title}", "", text.rstrip()]
    sys.stdout.write("\n".join(out) + "\n")
    if not all(t.met for t in targets):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
