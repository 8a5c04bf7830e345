"""What the commands share: settings built on first use, the exit codes, the app on a current
schema, database failures as one line, JSON and console output, and the common options."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, NoReturn

import click

from soredi_sync.errors import NoSnapshot, NotFound, SorediError

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from soredi_sync.bootstrap import App
    from soredi_sync.config import Settings
    from soredi_sync.reference_data import ReferenceData

EXIT_SYNC_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_SCHEMA = 5
EXIT_REJECTED = 6


class LazySettings:
    """Settings built on first use, so ``--help`` works with no configuration at all."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._settings: Settings | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        """What the command line set (``--database-url``)."""
        return dict(self._overrides)

    def get(self) -> Settings:
        if self._settings is None:
            from soredi_sync.config import Settings

            self._settings = Settings(**self._overrides)
        return self._settings


def lazy_settings(ctx: click.Context) -> LazySettings:
    lazy = ctx.find_object(LazySettings)
    assert lazy is not None, "the soredi-sync group sets it"
    return lazy


def settings_of(ctx: click.Context) -> Settings:
    return lazy_settings(ctx).get()


def reference_of(ctx: click.Context) -> ReferenceData:
    """The reference tables and routing policy, for a command that needs them without an app."""
    from soredi_sync.reference_data import ReferenceData

    return ReferenceData.load(settings_of(ctx).config_dir)


@contextmanager
def open_app(
    ctx: click.Context, *, migrate_empty: bool = False, reference: ReferenceData | None = None
) -> Iterator[App]:
    """The app for one command, on a database whose schema is current (else exit 5).

    :param reference: the reference data if the command has read it already
    """
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.db.engine import safe_database_url
    from soredi_sync.db.schema import SchemaState, prepare

    settings = settings_of(ctx)
    app = bootstrap(settings, reference)
    try:
        # Several processes may start on an empty database at once: one migrates, the
        # others wait for it (db/schema.py).
        state = prepare(app.engine, settings.database_url, migrate_empty=migrate_empty)
        if state is not SchemaState.CURRENT:
            click.echo(
                f"The database {safe_database_url(settings.database_url)} is {state.value}: "
                "run `soredi-sync db upgrade` first.",
                err=True,
            )
            ctx.exit(EXIT_SCHEMA)
        yield app
    finally:
        app.close()


@contextmanager
def database_errors(ctx: click.Context, doing: str) -> Iterator[None]:
    """A database that fails under a command (a full disk, a lost connection) is one line for
    the operator and exit code 1, not a traceback."""
    from soredi_sync.db.engine import safe_database_url
    from soredi_sync.ports.failures import DatabaseFailure, is_database_failure

    try:
        yield
        return
    except DatabaseFailure as exc:
        failure = exc
    except Exception as exc:
        if not is_database_failure(exc):
            raise
        failure = DatabaseFailure(doing, exc)
    click.echo(f"error: {failure} [{safe_database_url(settings_of(ctx).database_url)}]", err=True)
    ctx.exit(EXIT_SYNC_FAILED)


def jsonable(value: object) -> Any:
    from soredi_sync.services.queries import jsonable as to_json

    return to_json(value)


def emit_json(data: object) -> None:
    click.echo(json_text(jsonable(data)), nl=False)


def json_text(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_or_echo(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def fail(ctx: click.Context, error: SorediError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    ctx.exit(EXIT_NOT_FOUND if isinstance(error, NotFound | NoSnapshot) else 1)


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def split_values(values: tuple[str, ...]) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def actor_name(actor: str | None) -> str:
    """Who makes a change, for the record: ``--actor``, else ``cli:<login name>``."""
    if actor:
        return actor
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


class Days(click.ParamType[int]):
    """A number of days, ``30`` or ``30d``, from 1 to 3660."""

    name = "days"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removesuffix("d")
        if text.isascii() and text.isdigit() and 1 <= int(text) <= 3660:
            return int(text)
        self.fail(f"{value!r} is not a number of days from 1 to 3660 (30 or 30d)", param, ctx)


DAYS = Days()


def window_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--window DAYS`` (default 30): a window of days of routing traffic, ending today."""
    return click.option(
        "--window", type=DAYS, default=30, show_default=True, metavar="DAYS", help=help_text
    )


at_option = click.option(
    "--at", "at", callback=parse_day, metavar="DATE", help="As it was on this date."
)
actor_option = click.option(
    "--actor", metavar="NAME", help="Who makes the change, for the record (default: login name)."
)
