"""Fetching the sor-filer files: over HTTPS with httpx, or from a local directory.

Both clients return :class:`FetchedFile` records; neither leaks httpx objects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

import httpx

from soredi_sync.config import HttpSettings, RetrySettings
from soredi_sync.errors import SourceError, TransientUpstreamError
from soredi_sync.retry import retrying

logger = logging.getLogger(__name__)

# 500 is included: sor-filer is a static file host, and a 500 there is a hiccup, not a verdict.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    TransientUpstreamError,
)
CHUNK = 1024 * 1024

ProgressCallback = Callable[[str, int, int | None], None]


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """One file as fetched. ``path`` is None when the server said it was not modified."""

    name: str
    path: Path | None
    sha256: str | None
    size: int
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.path is None


@dataclass(frozen=True, slots=True)
class Validators:
    """What we last saw of a file, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


class SorFilesClient(Protocol):
    """Gets one sor-filer file into ``dest_dir``.

    :param name: the file's path relative to the source (e.g. ``sor.zip``)
    :param validators: ETag/Last-Modified of the last accepted copy; pass None to force a download
    :raises SourceError: the file could not be fetched (after retries for transient failures)
    """

    location: str

    def fetch(
        self,
        name: str,
        dest_dir: Path,
        validators: Validators | None = None,
        progress: ProgressCallback | None = None,
    ) -> FetchedFile: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def make_http_client(settings: HttpSettings) -> httpx.Client:
    """An httpx client with explicit timeouts on every phase."""
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        headers={"User-Agent": settings.user_agent},
        follow_redirects=True,
    )


class HttpxSorFilesClient:
    """Conditional, streamed, retried GETs against a sor-filer style base URL."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        retry: RetrySettings,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._http = http
        parsed = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        # Credentials in a mirror URL travel as an Authorization header, never in the URL:
        # httpx logs request URLs, and the location is stored in sync_runs.
        self._auth = httpx.BasicAuth(parsed.username, parsed.password) if parsed.username else None
        self._base_url = str(parsed.copy_with(username=None, password=None))
        self.location = self._base_url
        self._retry = retry
        self._sleep = sleep

    def fetch(
        self,
        name: str,
        dest_dir: Path,
        validators: Validators | None = None,
        progress: ProgressCallback | None = None,
    ) -> FetchedFile:
        url = self._base_url + name.lstrip("/")
        # The files are zips already: compressing them again only costs the server, and a
        # body sent as it is stored is what its Content-Length and any checksum describe.
        headers = {"Accept-Encoding": "identity"}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        kwargs = {"sleep": self._sleep} if self._sleep else {}
        try:
            for attempt in retrying(self._retry, TRANSIENT_EXCEPTIONS, **kwargs):
                with attempt:
                    return self._get_once(url, name, headers, dest_dir, progress)
        except TransientUpstreamError as exc:
            raise SourceError(f"{url} kept failing: HTTP {exc.status_code}") from exc
        except httpx.TransportError as exc:
            raise SourceError(f"{url} kept failing: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _get_once(
        self,
        url: str,
        name: str,
        headers: dict[str, str],
        dest_dir: Path,
        progress: ProgressCallback | None,
    ) -> FetchedFile:
        with self._http.stream(
            "GET", url, headers=headers, auth=self._auth or httpx.USE_CLIENT_DEFAULT
        ) as response:
            if response.status_code == 304:
                logger.info("%s not modified", url)
                return FetchedFile(
                    name=name,
                    path=None,
                    sha256=None,
                    size=0,
                    etag=response.headers.get("ETag") or headers.get("If-None-Match"),
                    last_modified=response.headers.get("Last-Modified")
                    or headers.get("If-Modified-Since"),
                )
            if response.status_code in TRANSIENT_STATUS:
                raise TransientUpstreamError(
                    url, response.status_code, _retry_after(response.headers.get("Retry-After"))
                )
            if response.status_code != 200:
                raise SourceError(f"{url} answered HTTP {response.status_code}")
            total = response.headers.get("Content-Length")
            expected = int(total) if total and total.isdigit() else None
            # Content-Length counts the bytes on the wire: for a body sent with a
            # Content-Encoding (a mirror that gzips anyway) that is the encoded size, not the
            # size of the file written, so the check below compares the raw count then.
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            encoded = encoding not in ("", "identity")
            digest = hashlib.sha256()
            size = 0
            dest_dir.mkdir(parents=True, exist_ok=True)
            # Stream to a temporary file beside the destination; a partial file never
            # survives under the final name.
            with tempfile.NamedTemporaryFile(
                dir=dest_dir, prefix=f".{Path(name).name}.", delete=False
            ) as tmp:
                tmp_path = Path(tmp.name)
                try:
                    for chunk in response.iter_bytes(CHUNK):
                        tmp.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if progress:
                            progress(name, size, None if encoded else expected)
                except BaseException:
                    tmp.close()
                    tmp_path.unlink(missing_ok=True)
                    raise
            received = response.num_bytes_downloaded if encoded else size
            if expected is not None and received != expected:
                tmp_path.unlink(missing_ok=True)
                raise httpx.RemoteProtocolError(
                    f"{url}: got {received} of {expected} bytes (connection cut short)"
                )
            final = dest_dir / Path(name).name
            tmp_path.replace(final)
            logger.info("Fetched %s (%d bytes)", url, size)
            return FetchedFile(
                name=name,
                path=final,
                sha256=digest.hexdigest(),
                size=size,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )


class DirectorySorFilesClient:
    """The same files from a local directory (``sync --from-dir``, tests, air-gapped sites)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.location = str(directory)

    def fetch(
        self,
        name: str,
        dest_dir: Path,
        validators: Validators | None = None,
        progress: ProgressCallback | None = None,
    ) -> FetchedFile:
        source = self._directory / name
        _check_regular_file(source)
        # Read in place: nothing is downloaded, so there is no partial file to guard against.
        try:
            size = source.stat().st_size
            digest = sha256_of(source)
        except OSError as exc:
            raise SourceError(f"{source} cannot be read: {exc.strerror or exc}") from exc
        if progress:
            progress(name, size, size)
        return FetchedFile(
            name=name,
            path=source,
            sha256=digest,
            size=size,
            etag=None,
            last_modified=None,
        )


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular_file(source: Path) -> None:
    """Refuse anything but a readable regular file, saying exactly what is there instead.

    A device or a FIFO would never end (``/dev/zero``) or block the sync for ever; a directory
    or a dangling link would fail later with a less helpful message.
    """
    try:
        mode = source.stat().st_mode  # follows symbolic links
    except FileNotFoundError:
        if source.is_symlink():
            raise SourceError(
                f"{source} is a symbolic link to {os.readlink(source)}, which does not exist"
            ) from None
        raise SourceError(f"{source} does not exist") from None
    except OSError as exc:
        raise SourceError(f"{source} cannot be reached: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
        via = f" (through a symbolic link to {os.readlink(source)})" if source.is_symlink() else ""
        raise SourceError(f"{source} is {kind}{via}, not a regular file")
    try:
        with source.open("rb"):
            pass
    except OSError as exc:
        raise SourceError(f"{source} cannot be read: {exc.strerror or exc}") from exc
