"""Fast bulk inserts for the version tables, inside the caller's transaction.

A first sync writes about half a million rows; through the ORM or Core executemany most of the
time goes into per-row parameter processing. Here rows go to the driver as tuples: PostgreSQL
gets COPY (psycopg 3), SQLite a plain executemany. Only plain values are written (str, int,
bool, date, None), which both drivers take as they are, except dates on SQLite, which are
stored as the ISO text SQLAlchemy's Date type reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Date, Table
from sqlalchemy.orm import Session

BATCH = 20_000


def bulk_insert(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; returns the row count."""
    connection = session.connection()
    dialect = connection.dialect.name
    quoted = ", ".join(connection.dialect.identifier_preparer.quote(c) for c in columns)
    name = connection.dialect.identifier_preparer.format_table(table)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    count = 0
    if dialect == "postgresql":
        pg_cursor: Any = dbapi.cursor()  # psycopg 3: COPY is not in the DB-API
        try:
            with pg_cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
                    count += 1
        finally:
            pg_cursor.close()
        return count
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {name} ({quoted}) VALUES ({placeholders})"
    date_positions = [
        i for i, column in enumerate(columns) if isinstance(table.c[column].type, Date)
    ]
    iterator = iter(rows)
    cursor = dbapi.cursor()
    try:
        while batch := list(islice(iterator, BATCH)):
            if date_positions:
                batch = [_iso_dates(row, date_positions) for row in batch]
            cursor.executemany(sql, batch)
            count += len(batch)
    finally:
        cursor.close()
    return count


def _iso_dates(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = values[i].isoformat()
    return tuple(values)
