"""Engine construction and Alembic wiring. Called from the composition root, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_engine(url: str, *, null_pool: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    WAL lets API readers keep reading the previous snapshot while a sync writes the next one.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.setdefault("pool_pre_ping", parsed.get_backend_name() != "sqlite")
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MB of page cache (default 2 MB): index upkeep during a national first load stays in
    # memory instead of re-reading B-tree pages.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> AlembicConfig:
    """Alembic configured from pyproject's [tool.alembic] and the given URL (no alembic.ini)."""
    pyproject = PROJECT_ROOT / "pyproject.toml"
    if pyproject.exists():
        config = AlembicConfig(toml_file=str(pyproject))
    else:  # installed without the checkout: point at the packaged migrations
        config = AlembicConfig()
        config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser interpolation would eat a literal % in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config
