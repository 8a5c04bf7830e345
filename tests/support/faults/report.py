"""What each fault case observed, for ``docs/reliability.md``.

The suite records every case here (fault, what was injected, the run's status and error text
as stored, whether the invariants held). With ``SOREDI_FAULT_REPORT=path`` set, the records are
written to that JSON file at the end of the session; render the table with

    .venv/bin/python -m tests.support.faults.report path
"""

from __future__ import annotations

import fcntl
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_ENV = "SOREDI_FAULT_REPORT"


@dataclass(frozen=True)
class Case:
    """One fault as the docs name it: a short name and what exactly was injected."""

    fault: str
    injected: str


@dataclass
class Record:
    test: str
    database: str
    fault: str
    injected: str
    status: str = ""
    reason: str = ""
    did: str = ""  # what else the system did (retries, snapshot kept, recovery)
    data_lost: str = "not checked"
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class FaultReport:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, record: Record) -> Record:
        self.records.append(record)
        return record

    def add_to(self, path: Path) -> None:
        """These records added to the report at ``path`` (created if missing), under a lock:
        the test processes of one run finish at about the same time."""
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            earlier = json.loads(path.read_text()) if path.exists() else []
            records = earlier + [asdict(r) for r in self.records]
            records.sort(key=lambda r: (r["test"], r["database"]))
            path.write_text(json.dumps(records, indent=2) + "\n")


# -- rendering ------------------------------------------------------------------------------

_PORT = re.compile(r"127\.0\.0\.1:\d+")
_TMP = re.compile(r"/tmp/[^\s'\"]*/")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00")
# The order of the docs' table: the wire, the files, the feed, the process, the readers.
_FILES = (
    "test_transport.py",
    "test_files.py",
    "test_soap.py",
    "test_process.py",
    "test_reads.py",
    "test_webhooks.py",
    "test_concurrency.py",
    "test_api_limits.py",
)


def _clean(text: str) -> str:
    """Ports, temporary paths and clock times differ per run; nothing else is changed."""
    text = _TIME.sub("<time>", _TMP.sub(".../", _PORT.sub("127.0.0.1:PORT", text)))
    return text.replace("|", "\\|")


def _what(status: str, reason: str, did: str) -> str:
    parts = [f"**{status}**"]
    if reason:
        parts.append(f"“{reason}”")
    if did:
        parts.append(did)
    return " — ".join(parts)


def _order(test: str) -> int:
    name = test.split("::")[0].rsplit("/", 1)[-1]
    return _FILES.index(name) if name in _FILES else len(_FILES)


def render(records: list[dict[str, Any]]) -> str:
    """One row per case; the databases' observations are merged when they agree."""
    by_test: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_test.setdefault(record["test"], []).append(record)
    lines = [
        "| fault | what was injected | what the system did: run status — “error as stored” — "
        "what else | data lost | test |",
        "|---|---|---|---|---|",
    ]
    for test in sorted(by_test, key=_order):  # stable: the suite's order within a file
        group = by_test[test]
        first = group[0]
        seen = {(r["status"], _clean(r["reason"]), _clean(r["did"])) for r in group}
        databases = "/".join(r["database"] for r in group)
        if len(seen) == 1:
            what = _what(*next(iter(seen)))
        else:
            what = "<br>".join(
                f"{r['database']}: " + _what(r["status"], _clean(r["reason"]), _clean(r["did"]))
                for r in group
            )
        lost = sorted({r["data_lost"] for r in group})
        lines.append(
            f"| {first['fault']} | {_clean(first['injected'])} | {what} "
            f"| {', '.join(lost)} ({databases}) | `{test}` |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tests.support.faults.report REPORT.json\n")
        return 2
    records = json.loads(Path(argv[0]).read_text())
    sys.stdout.write(render(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
