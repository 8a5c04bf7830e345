"""Log configuration: text for people, JSON lines for log shippers, the run id bound, no secrets.

:func:`configure_logging` is called once by the entrypoint (the CLI group, the daemon) and
may be called again to change format or level: it replaces its own handler, never anyone
else's. :func:`bind_run` puts the sync run's id (and source) on every record logged inside
it, in that thread or task only (a :mod:`contextvars` variable).

Secrets never reach the output, in either format: tokens (``sst_…``), passwords in URLs
(``scheme://user:***@host``) and ``password=…``/``secret=…``/``token=…`` pairs are masked
in the message, the exception text and any extra field. :class:`RedactSecrets` also goes on
every other handler of the root logger, as ``api.server.serve`` does for uvicorn's.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

__all__ = [
    "LogFormat",
    "JsonFormatter",
    "RedactSecrets",
    "RunContextFilter",
    "TextFormatter",
    "bind_run",
    "bound_run_id",
    "configure_logging",
    "redact",
    "uvicorn_log_config",
]

LogFormat = Literal["text", "json"]

# At DEBUG these log whole SOAP envelopes, DGWS ID cards and signatures included: never.
NOISY_LOGGERS = ("zeep.transports", "signxml")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_FORMAT_IN_RUN = "%(asctime)s %(levelname)s %(name)s [run %(run_id)s]: %(message)s"

# -- redaction -----------------------------------------------------------------------------

_TOKEN = re.compile(r"sst_[A-Za-z0-9_\-]{8,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@")
# key=value or key: value, quoted or not (e.g. a DSN's "password=x", "Authorization: Bearer x",
# a JSON '"token": "x"'). The value stops at quotes and backslashes, so masking a value inside
# an escaped JSON string cannot unbalance it.
_SECRET_PAIR = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|client_secret|api[_-]?key|access_token|token|"
    r"authorization)([\"']?\s*[=:]\s*[\"']?)(?:bearer\s+)?[^\s\"'\\,;&)]+"
)

# An extra field named like a secret (``extra={"password": ...}``) is masked whole.
_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|pwd|secret|client_secret|api[_-]?key|access_token|token|"
    r"authorization)"
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a token or password masked."""
    if "sst_" in text:
        text = _TOKEN.sub("sst_***", text)
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    return _SECRET_PAIR.sub(r"\1\2***", text)


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message and arguments before any handler writes it; for
    handlers whose formatter is not ours (uvicorn's, a test's).

    The arguments keep their shape: uvicorn's access formatter unpacks its five (client,
    method, path with query, HTTP version, status), so a token in a query string is masked in
    the path argument rather than by flattening the record, which would lose the access line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # The format string itself is left alone here ("password=%s" must keep its "%s"):
        # what the arguments fill in is masked, then the whole message is checked below.
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _redact_arg(value) for key, value in record.args.items()}
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it, not us
            return True
        masked = redact(message)
        if masked != message:  # a secret made of several arguments: flatten as a last resort
            record.msg = masked
            record.args = None
        return True


def _redact_arg(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    return value


# -- run context ---------------------------------------------------------------------------

_run: ContextVar[tuple[int, str | None] | None] = ContextVar("soredi_run", default=None)


@contextmanager
def bind_run(run_id: int, source: str | None = None) -> Iterator[None]:
    """Every record logged inside carries ``run_id`` (and ``source`` when given)."""
    token = _run.set((run_id, source))
    try:
        yield
    finally:
        _run.reset(token)


def bound_run_id() -> int | None:
    bound = _run.get()
    return bound[0] if bound else None


class RunContextFilter(logging.Filter):
    """Puts the bound run's ``run_id`` and ``source`` on the record (nothing when unbound)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _run.get()
        if bound is not None:
            record.run_id = bound[0]
            if bound[1] is not None and not hasattr(record, "source"):
                record.source = bound[1]
        return True


# -- formatters ----------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [run N]: message``, secrets masked in the whole text (traceback
    included)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._in_run = logging.PercentStyle(TEXT_FORMAT_IN_RUN)

    def formatMessage(self, record: logging.LogRecord) -> str:
        if getattr(record, "run_id", None) is not None:
            return self._in_run.format(record)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    ``run_id`` and ``source`` when bound, ``exception`` when there is one, and any ``extra``
    fields; every string value has its secrets masked."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        created = log_data.pop("_created", None)
        log_data.pop("color_message", None)  # uvicorn's copy of the message with ANSI colours
        ordered: dict[str, Any] = {}
        if isinstance(created, float):
            ordered["time"] = datetime.fromtimestamp(created, UTC).isoformat(
                timespec="milliseconds"
            )
        ordered.update(log_data)
        return {
            key: "***" if _SECRET_KEY.fullmatch(key) else _redact_value(value)
            for key, value in ordered.items()
        }

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        log_data["_created"] = record.created
        super().add_fields(log_data, record, message_dict)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


# -- configuration -------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of each record (as the stdlib's
    last-resort handler does), so a swapped stream (click's test runner, pytest's capture)
    is followed rather than written to after it was closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(
    format: LogFormat = "text",
    level: str | int = "INFO",
    verbose: int = 0,
) -> logging.Handler:
    """Send the root logger's records to stderr as text or JSON lines.

    :param format: ``text`` or ``json`` (``[logging] format``)
    :param level: the base level (``[logging] level``)
    :param verbose: each step lowers the level by one (``-v``: INFO, ``-vv``: DEBUG from WARNING)
    :returns: the handler installed (replacing the one an earlier call installed)
    :raises ValueError: an unknown format or level
    """
    if format not in ("text", "json"):
        raise ValueError(f"unknown log format {format!r} (text or json)")
    effective = max(logging.DEBUG, _level_number(level) - 10 * max(verbose, 0))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler.addFilter(RunContextFilter())
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
    for other in root.handlers:
        if not any(isinstance(f, RedactSecrets) for f in other.filters):
            other.addFilter(RedactSecrets())
    root.setLevel(effective)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(effective, logging.INFO))
    return handler


def uvicorn_log_config() -> dict[str, Any]:
    """A ``log_config`` for uvicorn under :func:`configure_logging`: uvicorn's loggers get no
    handlers of their own and hand their records to the root handler, so the access and error
    logs come out in the same format (JSON too) through the same redaction."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
