"""How storage fails, in words the use cases can act on without knowing the storage library.

The adapter registers its exception types (:func:`register_storage_errors`, done by
``db/engine.py`` on import); use cases ask :func:`is_database_failure` / :func:`is_storage_error`
and raise :class:`DatabaseFailure`, a one-line message for an operator.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from soredi_sync.errors import SorediError

_failure_types: tuple[type[BaseException], ...] = ()
_error_types: tuple[type[BaseException], ...] = ()

# What a full or failing disk looks like to SQLite and PostgreSQL ("could not extend file",
# SQLSTATE class 53 / 58): the operator's hint differs from a lost connection or a lock.
_DISK_SYMPTOMS = (
    "disk i/o error",
    "database or disk is full",
    "no space left on device",
    "could not extend file",
    "could not write",
    "disk full",
)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


class DatabaseFailure(SorediError):
    """The database refused a read or a write for a reason outside the data: a full or failing
    disk, a lost connection, a lock held too long. The message is one line, for an operator:
    the driver's own words, never the SQL or its parameters."""

    def __init__(self, doing: str, cause: BaseException) -> None:
        self.cause = describe_database_error(cause)
        self.disk = is_disk_failure(cause)
        hint = " (is the disk full?)" if self.disk else ""
        super().__init__(f"the database failed while {doing}: {self.cause}{hint}")


def describe_database_error(exc: BaseException) -> str:
    """The first line of the driver's message (``disk I/O error``), without SQLAlchemy's
    statement, parameters and background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def is_disk_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in ("53", "58"):
        return True
    return any(symptom in describe_database_error(exc).lower() for symptom in _DISK_SYMPTOMS)


def register_storage_errors(
    *, failures: tuple[type[BaseException], ...], errors: tuple[type[BaseException], ...]
) -> None:
    """Called by the storage adapter when it loads (``db/engine.py``): which of its exceptions
    are the database itself failing (``failures``) and which are any storage error (``errors``)."""
    global _failure_types, _error_types
    _failure_types = tuple({*_failure_types, *failures})
    _error_types = tuple({*_error_types, *errors, *failures})


def is_database_failure(exc: BaseException) -> bool:
    """True for errors of the database itself (disk, connection, lock: SQLAlchemy's
    ``OperationalError``), as opposed to errors of the statement or the data, which are bugs."""
    return isinstance(exc, _failure_types)


def is_storage_error(exc: BaseException) -> bool:
    """True for any error the storage adapter raised (a failure or a failed statement)."""
    return isinstance(exc, _error_types)


@contextmanager
def database_failures_as(doing: str) -> Iterator[None]:
    """Turns a failure of the database itself inside the block into :class:`DatabaseFailure`
    saying what was being done; any other error passes unchanged."""
    try:
        yield
    except Exception as exc:
        if is_database_failure(exc):
            raise DatabaseFailure(doing, exc) from exc
        raise
