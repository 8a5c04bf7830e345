"""Readers for the SOR2 CSV files in ``Sor_complete.zip``.

Header names, delimiter and encoding come from :class:`~soredi_sync.reference_data.CsvColumns`
(``config/csv-columns.toml``), because the real headers are not public: the code only knows
our keys (``gln``, ``edi_type_id``, ...). A key may have several accepted headers (aliases,
such as ``LocationCode`` and ``EanLocationCode``): the first of them, in the order the
configuration lists them, that the file has is used, and the reader reports which
(``headers``). Headers are matched case-insensitively and extra columns are ignored; a
required column under none of its names fails the file.

Values: booleans ``true``/``false``/``1``/``0``/``ja``/``nej`` in any case, ISO dates, and an
empty field means "not given". A value written as an Excel guard, ``="0123"`` (the whole field,
exactly that form), is read as what is inside the quotes: files exported through a spreadsheet
carry them to keep leading zeros.

Row-level problems go to a :class:`~soredi_sync.parsing.problems.Problems` when one is passed,
so the loader can report them together with everything else; without one they are raised as
one :class:`~soredi_sync.errors.InvalidSourceData` after the last row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import date
from typing import IO, Any

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Capability, Gln
from soredi_sync.parsing.csv_columns import (
    HeaderReport,
    _csv_rows,
    _report,
    _short_row,
    _value,
)
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.values import CSV_BOOLEANS, parse_bool, parse_date
from soredi_sync.reference_data import CsvColumns

logger = logging.getLogger(__name__)

EdiTypes = dict[str, tuple[str, str | None]]

EDI_TYPES_REQUIRED = ("id", "message_type", "version_code")
GLN_EDI_TYPES_REQUIRED = ("gln", "edi_type_id")
GLN_EDI_TYPES_OPTIONAL = ("from_date", "to_date")
GLNS_REQUIRED = (
    "gln",
    "non_active",
    "only_internal",
    "system_supplier",
    "system_type",
    "vans",
    "region_code",
    "edi_administrator",
)
GLNS_OPTIONAL = ("sor_id", "from_date", "to_date")

# Gln fields read as plain text, by our column key.
_GLN_TEXT_COLUMNS = {
    "system_supplier": "system_supplier",
    "system_type": "system_type",
    "vans": "vans",
    "region_code": "region_code",
    "edi_administrator": "edi_administrator",
    "sor_id": "owner_sor_id",
}


def _learn_date(
    dates: dict[str, date | None],
    raw: str,
    problems: Problems,
    label: str,
    line: int,
    gln: str,
    key: str,
) -> date | None:
    """Parse a date field and remember the answer for the same text (bad ones as None)."""
    text = _value(raw)
    day: date | None = None
    if text:
        try:
            day = parse_date(text)
        except ValueError as exc:
            problems.add(f"{label} line {line}: GLN {gln}: {key} {exc}")
            return None  # not cached: every row with the bad value is reported
    dates[raw] = day
    return day


def parse_edi_types(
    fileobj: IO[bytes],
    columns: CsvColumns,
    message_types: MessageTypeRegistry | None = None,
    *,
    problems: Problems | None = None,
    label: str = "EDITypes.csv",
    headers: HeaderReport | None = None,
) -> EdiTypes:
    """Read ``EDITypes.csv``: EDI type id → (message type code, version code or None).

    :param message_types: when given, a row with an empty message type but a known version
        code gets the message type that version belongs to (``XD9134L`` → ``XDIS91``)
    :param headers: filled with the headers used for our keys (``headers[label]``)
    :raises InvalidSourceData: a missing header or undecodable file; without ``problems`` also
        rows without id or message type and ids listed twice
    """
    collected = problems if problems is not None else Problems()
    result: EdiTypes = {}
    first_line: dict[str, int] = {}
    unknown_codes: set[str] = set()
    guarded = 0
    with _csv_rows(fileobj, columns, EDI_TYPES_REQUIRED, (), label, "edi_types") as (
        reader,
        header,
    ):
        id_at = header.index["id"]
        type_at = header.index["message_type"]
        version_at = header.index["version_code"]
        for row in reader:
            if len(row) < header.width:
                if row:
                    _short_row(collected, label, reader.line_num, row, header)
                continue
            line = reader.line_num
            raw = (row[id_at], row[type_at], row[version_at])
            type_id, code, version_text = (_value(v) for v in raw)
            guarded += sum(v.lstrip()[:2] == '="' for v in raw)
            code = code.upper()
            version = version_text or None
            if not type_id:
                collected.add(f"{label} line {line}: no EDI type id")
                continue
            if type_id in first_line:
                collected.add(
                    f"{label} line {line}: EDI type id {type_id!r} is listed again "
                    f"(first at line {first_line[type_id]})"
                )
                continue
            first_line[type_id] = line
            if not code and version and message_types is not None:
                code = message_types.code_for_version(version) or ""
            if not code:
                collected.add(
                    f"{label} line {line}: EDI type {type_id!r} has no message type"
                    + (f" and version code {version!r} is not a known one" if version else "")
                )
                continue
            if message_types is not None and code not in message_types:
                unknown_codes.add(code)
            result[type_id] = (code, version)
    if unknown_codes:
        logger.warning(
            "%s names message types missing from message-types.tsv: %s",
            label,
            ", ".join(sorted(unknown_codes)),
        )
    _report(headers, label, header, guarded)
    logger.info("Read %s: %d EDI types", label, len(result))
    if problems is None:
        collected.raise_if_any(f"{label} has invalid rows")
    return result


def parse_gln_edi_types(
    fileobj: IO[bytes],
    columns: CsvColumns,
    edi_types: Mapping[str, tuple[str, str | None]],
    as_of: date | None = None,
    *,
    problems: Problems | None = None,
    label: str = "LocationsCodeEDITypeMap.csv",
    headers: HeaderReport | None = None,
) -> Iterator[Capability]:
    """Read ``LocationsCodeEDITypeMap.csv`` as capabilities, joined to ``edi_types``.

    :param as_of: rows whose ``to_date`` is before this day are dropped (the file includes
        closed registrations); None keeps every row
    :param headers: filled with the headers used for our keys (``headers[label]``)
    :raises InvalidSourceData: a missing header or undecodable file; without ``problems``,
        after the last row, also unknown EDI type ids and bad dates
    """
    collected = problems if problems is not None else Problems()
    unknown: dict[str, list[int]] = {}  # type id -> [rows, first line]
    kept = dropped = guarded = 0
    with _csv_rows(
        fileobj,
        columns,
        GLN_EDI_TYPES_REQUIRED,
        GLN_EDI_TYPES_OPTIONAL,
        label,
        "gln_edi_types",
    ) as (reader, header):
        gln_at = header.index["gln"]
        type_at = header.index["edi_type_id"]
        from_at = header.get("from_date")
        to_at = header.get("to_date")
        width = header.width
        lookup = edi_types.get
        # One string object per distinct GLN (20,000) instead of one per row (400,000).
        canonical: dict[str, str] = {}
        dates: dict[str, date | None] = {"": None}
        # The hot loop of a national load: kept flat on purpose.
        for row in reader:
            if len(row) < width:
                if row:
                    _short_row(collected, label, reader.line_num, row, header)
                continue
            gln = row[gln_at].strip()
            type_id = row[type_at].strip()
            if gln[:1] == "=" or type_id[:1] == "=":  # Excel guards: rare, kept off the fast path
                guarded += (gln[:2] == '="') + (type_id[:2] == '="')
                gln, type_id = _value(gln), _value(type_id)
            if not gln or not type_id:
                collected.add(f"{label} line {reader.line_num}: empty GLN or EDI type id")
                continue
            if from_at is not None and row[from_at] not in dates:
                _learn_date(
                    dates, row[from_at], collected, label, reader.line_num, gln, "from_date"
                )
            if to_at is not None:
                raw = row[to_at]
                ends = (
                    dates[raw]
                    if raw in dates
                    else _learn_date(dates, raw, collected, label, reader.line_num, gln, "to_date")
                )
                if ends is not None and as_of is not None and ends < as_of:
                    # History, not the current state: an old row may name an EDI type that
                    # has since left EDITypes.csv, and must not fail today's pull.
                    dropped += 1
                    continue
            edi_type = lookup(type_id)
            if edi_type is None:
                seen = unknown.get(type_id)
                if seen is None:
                    unknown[type_id] = [1, reader.line_num]
                else:
                    seen[0] += 1
                continue
            kept += 1
            yield Capability(canonical.setdefault(gln, gln), edi_type[0], edi_type[1])
    _report(headers, label, header, guarded)
    for type_id, (rows, line) in unknown.items():
        collected.add(
            f"{label}: EDI type id {type_id!r} is not in EDITypes.csv "
            f"({rows} row(s), first at line {line})"
        )
    logger.info(
        "Read %s: %d capability rows kept, %d closed before %s dropped",
        label,
        kept,
        dropped,
        as_of,
    )
    if problems is None:
        collected.raise_if_any(f"{label} has invalid rows")


def _gln_in_force(
    gln: str, listed: list[tuple[int, Gln]], as_of: date | None, problems: Problems, label: str
) -> Gln | None:
    """The one record of ``gln`` among its rows (see :func:`parse_glns`), or None on a conflict."""
    if len(listed) == 1:
        return listed[0][1]

    def ended(record: Gln) -> bool:
        return record.to_date is not None and (as_of is None or record.to_date <= as_of)

    in_force = [(line, r) for line, r in listed if not ended(r)]
    if not in_force:
        last = max(r.to_date for _line, r in listed if r.to_date is not None)
        in_force = [(line, r) for line, r in listed if r.to_date == last]
    (first_line, first), *others = in_force
    for line, record in others:
        if record != first:
            differ = sorted(
                f for f in Gln.__dataclass_fields__ if getattr(first, f) != getattr(record, f)
            )
            problems.add(
                f"{label} line {line}: GLN {gln} is listed again (first on line {first_line}) "
                f"with different {', '.join(differ)}, both in force"
            )
            return None
    return first


def parse_glns(
    fileobj: IO[bytes],
    columns: CsvColumns,
    *,
    problems: Problems | None = None,
    label: str = "LocationsCodes.csv",
    as_of: date | None = None,
    headers: HeaderReport | None = None,
) -> Iterator[Gln]:
    """Read ``LocationsCodes.csv`` as GLN records (``sor_id`` and dates are optional columns).

    A GLN may be listed on several rows. Rows that ended (``to_date`` on or before ``as_of``, or
    any ``to_date`` when another row is open) are history and give way to the row in force;
    identical rows count once. Two rows in force with different values are a problem: which one
    is right is unknowable, so the pull fails closed. With only ended rows, the latest ending
    ones stand for the GLN (a closed GLN).

    :param as_of: the snapshot date rows are judged on (None: only open rows are in force)
    :param headers: filled with the headers used for our keys (``headers[label]``)
    :raises InvalidSourceData: a missing header or undecodable file; without ``problems``,
        after the last row, also bad booleans and dates, rows without a GLN and GLNs with two
        different rows in force
    """
    collected = problems if problems is not None else Problems()
    count = guarded = 0
    rows: dict[str, list[tuple[int, Gln]]] = {}
    with _csv_rows(fileobj, columns, GLNS_REQUIRED, GLNS_OPTIONAL, label, "glns") as (
        reader,
        header,
    ):
        gln_at = header.index["gln"]
        text_at = [
            (field, at)
            for key, field in _GLN_TEXT_COLUMNS.items()
            if (at := header.get(key)) is not None
        ]
        bool_at = [("non_active", header.index["non_active"])]
        bool_at.append(("only_internal", header.index["only_internal"]))
        date_at = [
            (key, at) for key in ("from_date", "to_date") if (at := header.get(key)) is not None
        ]
        for row in reader:
            if len(row) < header.width:
                if row:
                    _short_row(collected, label, reader.line_num, row, header)
                continue
            row_guards = sum(v.lstrip()[:2] == '="' for v in row)
            if row_guards:
                guarded += row_guards
                row = [_value(v) for v in row]
            gln = row[gln_at].strip()
            if not gln:
                collected.add(f"{label} line {reader.line_num}: no GLN")
                continue
            values: dict[str, Any] = {}
            for field, at in text_at:
                values[field] = row[at].strip() or None
            for key, at in bool_at:
                raw = row[at].strip()
                if not raw:
                    continue
                try:
                    flag = parse_bool(raw, CSV_BOOLEANS)
                except ValueError as exc:
                    collected.add(f"{label} line {reader.line_num}: GLN {gln}: {key} {exc}")
                    continue
                if key == "non_active":
                    values["active"] = not flag
                else:
                    values["only_internal"] = flag
            for key, at in date_at:
                raw = row[at].strip()
                if not raw:
                    continue
                try:
                    values[key] = parse_date(raw)
                except ValueError as exc:
                    collected.add(f"{label} line {reader.line_num}: GLN {gln}: {key} {exc}")
            rows.setdefault(gln, []).append((reader.line_num, Gln(gln=gln, **values)))
    _report(headers, label, header, guarded)
    for gln, listed in rows.items():
        record = _gln_in_force(gln, listed, as_of, collected, label)
        if record is not None:
            count += 1
            yield record
    logger.info("Read %s: %d GLNs", label, count)
    if problems is None:
        collected.raise_if_any(f"{label} has invalid rows")
