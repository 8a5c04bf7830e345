"""Engine construction and Alembic wiring. Called from the composition root, never at import."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from soredi_sync.errors import MissingExtra
from soredi_sync.ports.failures import register_storage_errors

# SQLAlchemy's errors, as the storage ports know them: OperationalError is the database itself
# failing (disk, connection, lock); any other SQLAlchemyError is a failed statement.
register_storage_errors(failures=(OperationalError,), errors=(SQLAlchemyError,))

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# How long a SQLite connection waits for another process's lock before "database is locked".
SQLITE_BUSY_SECONDS = 30.0

# Execution option of a connection whose next transaction must start with ``BEGIN IMMEDIATE``
# on SQLite (see :func:`_sqlite_begin`); other engines ignore it.
SQLITE_BEGIN_IMMEDIATE = "soredi_sqlite_begin_immediate"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_engine(url: str, *, null_pool: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    WAL lets API readers keep reading the previous snapshot while a sync writes the next one.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_SECONDS)
    # JSON columns hold compact UTF-8 text (no spaces, no \u escapes): the FHIR history
    # serves it as it is.
    kwargs.setdefault("json_serializer", compact_json)
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.setdefault("pool_pre_ping", parsed.get_backend_name() != "sqlite")
    try:
        engine = create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        if parsed.get_backend_name() == "postgresql" and (exc.name or "").startswith("psycopg"):
            raise MissingExtra("a PostgreSQL database", "psycopg", "postgres") from exc
        raise
    if engine.dialect.name == "sqlite":
        busy_seconds = float(kwargs["connect_args"].get("timeout", SQLITE_BUSY_SECONDS))
        event.listen(engine, "connect", lambda dbapi, _record: _sqlite_pragmas(dbapi, busy_seconds))
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def safe_database_url(url: str) -> str:
    """``url`` with any password masked, for logs and status output."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_begin(conn: Connection) -> None:
    """Start a transaction with ``BEGIN IMMEDIATE`` when the connection asks for it.

    pysqlite opens transactions itself, lazily, with a deferred ``BEGIN`` before the first
    write: a transaction that reads first and writes later cannot take the write lock without
    failing (``database is locked``) when another writer got in between. A transaction that
    must hold the write lock from its first statement (storing a snapshot) says so with the
    execution option :data:`SQLITE_BEGIN_IMMEDIATE`; for it we take over as SQLAlchemy's
    documented pysqlite recipe does (``isolation_level = None``, then our own ``BEGIN``),
    waiting up to the busy timeout for the lock. Every other transaction keeps pysqlite's own
    behaviour, so nothing else changes.
    """
    record = conn.connection
    dbapi_connection = record.driver_connection
    if dbapi_connection is None:  # pragma: no cover - a connection being torn down
        return
    if conn.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE):
        record.info.setdefault(_PYSQLITE_LEVEL, dbapi_connection.isolation_level)
        dbapi_connection.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif _PYSQLITE_LEVEL in record.info:
        # The previous transaction on this connection was ours: hand control back.
        dbapi_connection.isolation_level = record.info.pop(_PYSQLITE_LEVEL)


_PYSQLITE_LEVEL = "soredi_pysqlite_isolation_level"


def _wal_mode(dbapi_connection: Any, busy_seconds: float) -> None:
    """Put the database in WAL mode, waiting for another process doing the same.

    The switch needs the database to itself for a moment, and SQLite answers ``database is
    locked`` at once, without its busy handler, when another connection is there: two processes
    opening a new database together would see one of them fail. WAL is a property of the file,
    so once it is set the check finds it and nothing is switched.
    """
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _sqlite_pragmas(dbapi_connection: Any, busy_seconds: float) -> None:
    _wal_mode(dbapi_connection, busy_seconds)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MB of page cache (default 2 MB): index upkeep during a national first load stays in
    # memory instead of re-reading B-tree pages.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> AlembicConfig:
    """Alembic configured for the package's migrations and the given URL (no alembic.ini).

    In a checkout, pyproject's [tool.alembic] is read as well (the file template and the
    post-write hooks of ``alembic revision``); an installed wheel carries the migrations as
    ``soredi_sync/_migrations``.
    """
    from soredi_sync.config import packaged_dir

    migrations = packaged_dir("migrations")
    pyproject = PROJECT_ROOT / "pyproject.toml"
    if pyproject.is_file() and migrations == PROJECT_ROOT / "migrations":
        config = AlembicConfig(toml_file=str(pyproject))
    else:
        config = AlembicConfig()
    config.set_main_option("script_location", str(migrations).replace("%", "%%"))
    # ConfigParser interpolation would eat a literal % in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config
