"""The project's exceptions. Entrypoints map them to exit codes and HTTP statuses."""

from __future__ import annotations


class SorediError(Exception):
    """Base of every error soredi-sync raises on purpose."""


class SourceError(SorediError):
    """A source could not be fetched (after retries) or answered with a non-retryable error."""


class TransientUpstreamError(SourceError):
    """An upstream answer worth retrying: HTTP 429, 502, 503, 504 (and 500)."""

    def __init__(self, url: str, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(f"{url!r} answered HTTP {status_code}")
        self.url = url
        self.status_code = status_code
        self.retry_after = retry_after


class InvalidSourceData(SorediError):
    """A pulled file is broken: bad archive, malformed XML/CSV, failed validation.

    ``problems`` lists every problem found, so the operator sees them all at once.
    """

    def __init__(self, what: str, problems: list[str] | None = None) -> None:
        self.what = what
        self.problems = list(problems or [])
        detail = f": {'; '.join(self.problems[:10])}" if self.problems else ""
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"{what}{detail}{more}")


class MassChangeRefused(SorediError):
    """The pull would remove more of the registry than the guards allow."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(
            "refused as implausible: "
            + "; ".join(reasons)
            + " (re-run with --accept-mass-change if this is real)"
        )


class NotFound(SorediError, LookupError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind = kind
        self.key = key


class NoSnapshot(SorediError):
    def __init__(self) -> None:
        super().__init__("no snapshot has been synced yet: run `soredi-sync sync` first")


class MissingExtra(SorediError):
    """An optional part needs a package that is not installed: the message names the extra."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(
            f"{what} needs {module}, which is not installed: pip install 'soredi-sync[{extra}]'"
        )
        self.module = module
        self.extra = extra


class ReferenceDataError(SorediError, ValueError):
    """A reference file (config folder) is missing, unreadable or wrong; the message starts
    with its path."""
