"""Finding our columns in a SOR2 CSV file's header (their names come from
``config/csv-columns.toml``), reading its rows as csv, and unwrapping Excel-guarded values: what
every reader in :mod:`soredi_sync.parsing.sor_csv` shares."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.problems import Problems
from soredi_sync.reference_data import CsvColumns

# Per file label: our key -> the header the file had for it; and how many guarded values.
HeaderReport = dict[str, dict[str, Any]]


def unguard(value: str) -> str:
    """``="0123"`` -> ``0123``; any other text as it is (only that exact form is a guard)."""
    if len(value) >= 3 and value[0] == "=" and value[1] == '"' and value[-1] == '"':
        return value[2:-1]
    return value


def _value(raw: str) -> str:
    text = raw.strip()
    return unguard(text).strip() if text[:1] == "=" else text


@dataclass(frozen=True, slots=True)
class _Header:
    """Where each of our column keys sits in a file (optional keys may be missing)."""

    index: dict[str, int]
    width: int  # fields a row needs to reach every column we read
    used: dict[str, str]  # our key -> the header text it was found under

    def get(self, key: str) -> int | None:
        return self.index.get(key)


def _report(report: HeaderReport | None, label: str, header: _Header, guarded: int) -> None:
    if report is not None:
        report[label] = {"headers": dict(header.used), "excel_guards": guarded}


def _read_header(
    reader: Any,
    columns: CsvColumns,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    label: str,
    section: str,
) -> _Header:
    header: list[str] | None = None
    for row in reader:
        if row:
            header = row
            break
    if header is None:
        raise InvalidSourceData(f"{label} is empty: no header line")
    mapping: Mapping[str, str] = getattr(columns, section)
    found: dict[str, int] = {}
    for position, name in enumerate(header):
        found.setdefault(name.strip().lstrip("\ufeff").casefold(), position)
    index: dict[str, int] = {}
    used: dict[str, str] = {}
    missing: list[str] = []

    def spelt(key: str) -> str:
        first, *others = columns.names(section, key)
        return first + (f" (or {' or '.join(others)})" if others else "")

    for key in (*required, *optional):
        if key not in mapping:
            if key in required:
                raise ValueError(f"csv-columns.toml has no {key!r} in [{section}]")
            continue
        for name in columns.names(section, key):  # the first one the file has wins
            at = found.get(name.strip().casefold())
            if at is not None:
                index[key] = at
                used[key] = header[at].strip().lstrip("\ufeff")
                break
        else:
            if key in required:
                missing.append(key)
    if missing:
        raise InvalidSourceData(
            f"{label} lacks required column(s) {', '.join(repr(spelt(k)) for k in missing)}",
            [
                f"expected headers: {', '.join(spelt(k) for k in required)}"
                + (
                    f" (optional: {', '.join(spelt(k) for k in optional if k in mapping)})"
                    if optional
                    else ""
                ),
                f"found headers: {', '.join(h.strip() for h in header)}",
                f"header names come from [{section}] in config/csv-columns.toml",
            ],
        )
    return _Header(index=index, width=max(index.values()) + 1, used=used)


@contextlib.contextmanager
def _csv_rows(
    fileobj: IO[bytes],
    columns: CsvColumns,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    label: str,
    section: str,
) -> Iterator[tuple[Any, _Header]]:
    """A csv reader positioned after the header, and where our columns are.

    Decoding and csv errors met while the caller iterates are turned into InvalidSourceData.
    """
    text = io.TextIOWrapper(fileobj, encoding=columns.encoding, newline="")
    reader = csv.reader(text, delimiter=columns.delimiter, strict=True)
    try:
        header = _read_header(reader, columns, required, optional, label, section)
        yield reader, header
    except UnicodeDecodeError as exc:
        raise InvalidSourceData(
            f"{label} is not valid {columns.encoding} text (near line {reader.line_num + 1}): "
            f"{exc.reason}"
        ) from exc
    except csv.Error as exc:
        raise InvalidSourceData(f"{label} line {reader.line_num}: malformed CSV: {exc}") from exc
    finally:
        # The caller owns the binary stream: do not let the wrapper close it.
        with contextlib.suppress(ValueError):
            text.detach()


def _short_row(problems: Problems, label: str, line: int, row: list[str], header: _Header) -> None:
    problems.add(
        f"{label} line {line}: {len(row)} field(s), but the columns read need {header.width}"
    )
