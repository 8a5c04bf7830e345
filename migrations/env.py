"""Alembic environment: URL from the caller (soredi-sync CLI) or Settings, target Base.metadata."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from soredi_sync.db.engine import make_engine
from soredi_sync.db.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from soredi_sync.config import Settings

    return Settings().database_url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    sqlite = (connection.dialect.name if connection is not None else (url or "")).startswith(
        "sqlite"
    )
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        render_as_batch=sqlite,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_database_url(), null_pool=True)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
