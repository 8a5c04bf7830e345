"""Sync benchmark on the national sandbox profile, every figure from one run.

    .venv/bin/python -m benchmarks.bench_sync [--database-url URL] [--profile national]

Each measured step runs in a fresh child process, so its peak RSS is its own. Steps:

- bare parse: lxml iterparse over Sor.xml + csv.reader over the three CSVs (the floor);
- full sync: first pull into an empty database over HTTP from the loopback sandbox;
- unchanged re-sync: the same source again (conditional GET answers 304);
- next-day sync: day 1 of the sandbox (download, parse, diff against the stored day 0, store).

Prints a Markdown table with the ratios the targets are stated in (full sync ≤ 2.2× bare parse,
issue #17; unchanged re-sync ≤ 2 s; peak RSS of any sync step ≤ 300 MB, issue #17).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data"


def _peak_rss_mb() -> float:
    """This process's high-water mark. ru_maxrss survives exec on Linux (a child would report
    its parent's peak), so read VmHWM, which starts afresh with the new program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _emit(result: dict[str, Any]) -> None:
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    sys.stdout.write(json.dumps(result) + "\n")


def step_bare_parse(day_dir: Path) -> None:
    """The floor: stream the same files with no model, validation or storage."""
    started = time.perf_counter()
    elements = 0
    with zipfile.ZipFile(day_dir / "sor.zip") as zf, zf.open("Sor.xml") as fh:
        for _event, elem in etree.iterparse(fh, events=("end",), resolve_entities=False):
            elements += 1
            elem.clear(keep_tail=False)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
    rows = 0
    with zipfile.ZipFile(day_dir / "Sor_complete.zip") as zf:
        for name in ("EDITypes.csv", "LocationsCodeEDITypeMap.csv", "LocationsCodes.csv"):
            with zf.open(name) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                for _row in csv.reader(text, delimiter=";"):
                    rows += 1
    _emit(
        {
            "step": "bare_parse",
            "seconds": time.perf_counter() - started,
            "xml_elements": elements,
            "csv_rows": rows,
        }
    )


def step_sync(database_url: str, base_url: str) -> None:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.services.sync import sync_source

    settings = Settings(database_url=database_url)
    with bootstrap(settings) as app:
        started = time.perf_counter()
        outcome = sync_source(
            app.uow_factory,
            app.files_client(base_url=base_url),
            app.sync_config(),
            trigger="benchmark",
        )
        seconds = time.perf_counter() - started
    _emit(
        {
            "step": "sync",
            "seconds": seconds,
            "status": outcome.status.value,
            "error": outcome.error,
            "counts": outcome.counts,
        }
    )


def _child(*args: str, module: str = "benchmarks.bench_sync") -> dict[str, Any]:
    """Run ``module`` with ``args`` in a fresh process (its own peak RSS); its last JSON line."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"step {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fresh_database(url: str | None, workdir: Path) -> str:
    from sqlalchemy import create_engine, text

    from soredi_sync.db.models import Base
    from soredi_sync.db.schema import upgrade

    if url is None:
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        return url
    from sqlalchemy import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a fresh machine has no benchmark database yet
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    upgrade(url)

    engine = create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--step", choices=["bare_parse", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step == "bare_parse":
        step_bare_parse(Path(args.dir))
        return
    if args.step == "sync":
        step_sync(args.database_url, args.base_url)
        return

    from soredi_sync.sandbox.generate import generate
    from soredi_sync.sandbox.server import SandboxServer

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "manifest.json").exists():
        started = time.perf_counter()
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)
        sys.stderr.write(f"generated {sandbox} in {time.perf_counter() - started:.1f} s\n")
    manifest = json.loads((sandbox / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["snapshots"][0]["counts"]

    with tempfile.TemporaryDirectory(prefix="soredi-bench-") as tmp:
        url = _fresh_database(args.database_url, Path(tmp))
        bare = _child("--step", "bare_parse", "--dir", str(sandbox / "day-000"))
        with SandboxServer(sandbox, day=0) as server:
            full = _child("--step", "sync", "--database-url", url, "--base-url", server.base_url)
            unchanged = _child(
                "--step", "sync", "--database-url", url, "--base-url", server.base_url
            )
            server.set_day(1)
            next_day = _child(
                "--step", "sync", "--database-url", url, "--base-url", server.base_url
            )

    for name, result in (("full", full), ("unchanged", unchanged), ("next_day", next_day)):
        if result["status"] not in ("succeeded", "unchanged"):
            raise SystemExit(f"{name} sync did not succeed: {result}")
    engine = "PostgreSQL" if args.database_url else "SQLite"
    sizes = {
        name: (sandbox / "day-000" / name).stat().st_size / 1e6
        for name in ("sor.zip", "Sor_complete.zip")
    }
    ratio = full["seconds"] / bare["seconds"]
    peak = max(full["peak_rss_mb"], unchanged["peak_rss_mb"], next_day["peak_rss_mb"])
    changes = next_day["counts"].get("changes", {})
    n_changes = sum(sum(kinds.values()) for kinds in changes.values())
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {engine}",
        f"data: profile {args.profile} seed {args.seed}: {counts['units']} units, "
        f"{counts['glns']} GLNs, {counts['capabilities']} GLN x type rows; "
        f"sor.zip {sizes['sor.zip']:.1f} MB, Sor_complete.zip {sizes['Sor_complete.zip']:.1f} MB",
        "",
        "| step | seconds | peak RSS (MB) | ratio / target |",
        "|---|---:|---:|---|",
        f"| bare parse (iterparse + csv.reader) | {bare['seconds']:.2f} | "
        f"{bare['peak_rss_mb']:.0f} | floor |",
        f"| full sync (empty database) | {full['seconds']:.2f} | {full['peak_rss_mb']:.0f} | "
        f"{ratio:.2f}x bare parse (target <= 2.2x) |",
        f"| unchanged re-sync (304) | {unchanged['seconds']:.2f} | "
        f"{unchanged['peak_rss_mb']:.0f} | target <= 2 s |",
        f"| next-day sync ({n_changes} changes) | {next_day['seconds']:.2f} | "
        f"{next_day['peak_rss_mb']:.0f} | "
        f"{next_day['seconds'] / bare['seconds']:.2f}x bare parse |",
        "",
        f"peak RSS of any sync step: {peak:.0f} MB (target <= 300 MB)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
