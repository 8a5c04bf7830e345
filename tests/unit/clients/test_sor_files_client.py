"""The HTTP client: conditional GET, streaming to disk, and the retry policy."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from soredi_sync.clients.sor_files import DirectorySorFilesClient, HttpxSorFilesClient, Validators
from soredi_sync.config import RetrySettings
from soredi_sync.errors import SourceError

BASE = "http://127.0.0.1:9/"
BODY = b"PK\x03\x04" + b"x" * 5000


def _client(handler, attempts: int = 3) -> tuple[HttpxSorFilesClient, list[float]]:
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler), timeout=5)
    client = HttpxSorFilesClient(
        http, BASE, RetrySettings(attempts=attempts, initial_wait=0.5, max_wait=4), sleeps.append
    )
    return client, sleeps


class TestFetch:
    def test_a_file_is_streamed_to_disk_with_its_hash_and_validators(self, tmp_path: Path) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200,
                content=BODY,
                headers={"ETag": '"abc"', "Last-Modified": "Mon, 02 Nov 2026 03:00:00 GMT"},
            )

        client, _ = _client(handler)
        fetched = client.fetch("sor.zip", tmp_path)
        assert fetched.path is not None and fetched.path.read_bytes() == BODY
        assert fetched.etag == '"abc"' and fetched.size == len(BODY)
        assert fetched.sha256 is not None and len(fetched.sha256) == 64
        assert [p.name for p in tmp_path.iterdir()] == ["sor.zip"]

    def test_known_validators_are_sent_and_304_means_not_modified(self, tmp_path: Path) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(304)

        client, _ = _client(handler)
        fetched = client.fetch(
            "sor.zip", tmp_path, Validators('"abc"', "Mon, 02 Nov 2026 03:00:00 GMT")
        )
        assert fetched.not_modified
        assert seen[0].headers["If-None-Match"] == '"abc"'
        assert seen[0].headers["If-Modified-Since"] == "Mon, 02 Nov 2026 03:00:00 GMT"
        assert list(tmp_path.iterdir()) == []

    def test_the_file_is_asked_for_without_content_encoding(self, tmp_path: Path) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=BODY)

        client, _ = _client(handler)
        client.fetch("sor.zip", tmp_path)
        assert seen[0].headers["Accept-Encoding"] == "identity"


class TestRetryPolicy:
    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    def test_transient_statuses_are_retried_until_success(
        self, tmp_path: Path, status: int
    ) -> None:
        answers = iter([httpx.Response(status), httpx.Response(200, content=BODY)])
        client, sleeps = _client(lambda request: next(answers))
        assert client.fetch("sor.zip", tmp_path).size == len(BODY)
        assert len(sleeps) == 1

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
    def test_other_client_errors_fail_at_once(self, tmp_path: Path, status: int) -> None:
        calls: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            return httpx.Response(status)

        client, sleeps = _client(handler)
        with pytest.raises(SourceError, match=f"HTTP {status}"):
            client.fetch("sor.zip", tmp_path)
        assert calls == [1] and sleeps == []

    def test_connection_errors_are_retried_then_reported(self, tmp_path: Path, caplog) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        client, sleeps = _client(handler, attempts=3)
        with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match="kept failing"):
            client.fetch("sor.zip", tmp_path)
        assert len(sleeps) == 2
        assert sum("Attempt" in r.getMessage() for r in caplog.records) == 2

    def test_retry_after_is_respected_within_the_cap(self, tmp_path: Path) -> None:
        answers = iter(
            [
                httpx.Response(429, headers={"Retry-After": "3"}),
                httpx.Response(503, headers={"Retry-After": "120"}),
                httpx.Response(200, content=BODY),
            ]
        )
        client, sleeps = _client(lambda request: next(answers))
        client.fetch("sor.zip", tmp_path)
        assert sleeps == [3.0, 4.0]

    def test_a_body_shorter_than_its_content_length_is_retried_and_never_kept(
        self, tmp_path: Path
    ) -> None:
        class Short(httpx.SyncByteStream):
            def __iter__(self):
                yield BODY[:100]

        answers = iter(
            [
                httpx.Response(200, headers={"Content-Length": str(len(BODY))}, stream=Short()),
                httpx.Response(200, content=BODY),
            ]
        )
        client, sleeps = _client(lambda request: next(answers))
        fetched = client.fetch("sor.zip", tmp_path)
        assert fetched.size == len(BODY) and len(sleeps) == 1
        assert [p.name for p in tmp_path.iterdir()] == ["sor.zip"]


class TestCredentialsStayOut:
    def test_a_password_in_the_base_url_reaches_neither_errors_logs_nor_location(
        self, tmp_path: Path, caplog
    ) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(503)

        http = httpx.Client(transport=httpx.MockTransport(handler), timeout=5)
        client = HttpxSorFilesClient(
            http,
            "http://mirror-user:s3cret-pw@127.0.0.1:9/files",
            RetrySettings(attempts=2, initial_wait=0, max_wait=0),
            lambda _s: None,
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as excinfo:
            client.fetch("sor.zip", tmp_path)
        assert "s3cret-pw" not in client.location
        assert "s3cret-pw" not in str(excinfo.value)
        assert "s3cret-pw" not in caplog.text
        assert client.location == "http://127.0.0.1:9/files/"

    def test_credentials_from_the_url_are_sent_as_basic_auth(self, tmp_path: Path) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=BODY)

        http = httpx.Client(transport=httpx.MockTransport(handler), timeout=5)
        client = HttpxSorFilesClient(
            http, "http://mirror-user:s3cret-pw@127.0.0.1:9/", RetrySettings(), lambda _s: None
        )
        client.fetch("sor.zip", tmp_path)
        assert seen[0].headers["Authorization"].startswith("Basic ")
        assert "s3cret-pw" not in str(seen[0].url)


@contextmanager
def _as_nobody_if_root() -> Iterator[None]:
    """Permissions do not stop root: read as ``nobody`` then (the effective uid only)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def served_dir() -> Iterator[Path]:
    """A directory every user may enter (``tmp_path`` is private to its owner)."""
    directory = Path(tempfile.mkdtemp(prefix="soredi-from-dir-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


class TestDirectoryClient:
    def test_a_regular_file_is_read_in_place(self, served_dir: Path, tmp_path: Path) -> None:
        (served_dir / "sor.zip").write_bytes(BODY)
        fetched = DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert fetched.path == served_dir / "sor.zip" and fetched.size == len(BODY)

    def test_a_missing_file_does_not_exist(self, served_dir: Path, tmp_path: Path) -> None:
        with pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert str(caught.value) == f"{served_dir}/sor.zip does not exist"

    def test_a_directory_is_named_as_a_directory(self, served_dir: Path, tmp_path: Path) -> None:
        (served_dir / "sor.zip").mkdir()
        with pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert str(caught.value) == f"{served_dir}/sor.zip is a directory, not a regular file"

    def test_a_link_to_dev_zero_is_refused_before_anything_is_read(
        self, served_dir: Path, tmp_path: Path
    ) -> None:
        (served_dir / "sor.zip").symlink_to("/dev/zero")
        with pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert str(caught.value) == (
            f"{served_dir}/sor.zip is a character device (through a symbolic link to /dev/zero)"
            ", not a regular file"
        )

    def test_a_fifo_is_refused_without_opening_it(self, served_dir: Path, tmp_path: Path) -> None:
        os.mkfifo(served_dir / "sor.zip")  # opening it would block until a writer came
        with pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert (
            str(caught.value) == f"{served_dir}/sor.zip is a FIFO (named pipe), not a regular file"
        )

    def test_a_dangling_link_names_where_it_points(self, served_dir: Path, tmp_path: Path) -> None:
        (served_dir / "sor.zip").symlink_to("/nowhere/sor.zip")
        with pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert str(caught.value) == (
            f"{served_dir}/sor.zip is a symbolic link to /nowhere/sor.zip, which does not exist"
        )

    def test_an_unreadable_file_is_named_as_unreadable(
        self, served_dir: Path, tmp_path: Path
    ) -> None:
        target = served_dir / "sor.zip"
        target.write_bytes(BODY)
        target.chmod(0)
        with _as_nobody_if_root(), pytest.raises(SourceError) as caught:
            DirectorySorFilesClient(served_dir).fetch("sor.zip", tmp_path)
        assert str(caught.value) == f"{target} cannot be read: Permission denied"
