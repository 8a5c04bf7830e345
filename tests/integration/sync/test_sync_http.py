"""Sync over HTTP from the sandbox server on loopback: conditional GET, retries, faults."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import HttpSettings
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.sync import sync_source
from tests.support.app import make_settings


@pytest.fixture
def server(sandbox_dir: Path) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_dir, day=0) as srv:
        yield srv


def _sync(app: App, server: SandboxServer, **kwargs):
    client = app.files_client(base_url=server.base_url)
    return sync_source(app.uow_factory, client, app.sync_config(), **kwargs)


def _file_requests(server: SandboxServer) -> list[tuple[str, str, int]]:
    return [r for r in server.requests if not r[1].startswith("/_sandbox")]


def _snapshot_id(app: App) -> int | None:
    with app.uow() as uow:
        snap = uow.registry.current_snapshot()
        return snap.id if snap else None


class TestConditionalGet:
    def test_an_unchanged_source_costs_one_304_per_file(
        self, app: App, server: SandboxServer
    ) -> None:
        _sync(app, server)
        before = len(_file_requests(server))
        outcome = _sync(app, server)
        assert outcome.status is RunStatus.UNCHANGED
        assert outcome.counts["reason"] == "not modified"
        assert [status for _, _, status in _file_requests(server)[before:]] == [304, 304]

    def test_a_new_day_is_downloaded_and_stored(self, app: App, server: SandboxServer) -> None:
        first = _sync(app, server)
        server.set_day(1)
        second = _sync(app, server)
        assert second.status is RunStatus.SUCCEEDED
        assert second.snapshot.id == first.snapshot.id + 1
        with app.uow() as uow:
            run = uow.runs.get(second.run_id)
        assert set(run.etags) == {"sor.zip", "Sor_complete.zip"}
        assert run.location == server.base_url

    def test_force_downloads_even_when_the_server_says_not_modified(
        self, app: App, server: SandboxServer
    ) -> None:
        _sync(app, server)
        before = len(_file_requests(server))
        outcome = _sync(app, server, force=True)
        assert outcome.status is RunStatus.UNCHANGED
        assert [status for _, _, status in _file_requests(server)[before:]] == [200, 200]


class TestTransientFaults:
    @pytest.mark.parametrize(
        "fault",
        [
            {"status": 500},
            {"status": 503},
            {"status": 429, "headers": {"Retry-After": "0"}},
            {"reset": True},
            {"truncate": 1000},
        ],
        ids=["500", "503", "429", "reset", "truncated"],
    )
    def test_a_single_transient_fault_is_retried_and_the_sync_succeeds(
        self, app: App, server: SandboxServer, fault: dict
    ) -> None:
        server.inject("sor.zip", **fault)
        outcome = _sync(app, server)
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        statuses = [s for _, p, s in _file_requests(server) if p == "/sor.zip"]
        assert len(statuses) == 2

    def test_a_read_timeout_is_retried(self, database_url: str, server: SandboxServer) -> None:
        settings = make_settings(database_url, http=HttpSettings(read_timeout=0.3))
        server.inject("Sor_complete.zip", delay=1.0)
        with bootstrap(settings) as app:
            outcome = _sync(app, server)
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error


class TestPersistentFaults:
    def test_a_source_that_keeps_failing_fails_the_run_and_keeps_the_snapshot(
        self, app: App, server: SandboxServer
    ) -> None:
        first = _sync(app, server)
        server.set_day(1)
        server.inject("Sor_complete.zip", status=503, times=10)
        outcome = _sync(app, server)
        assert outcome.status is RunStatus.FAILED
        assert "503" in outcome.error
        assert _snapshot_id(app) == first.snapshot.id
        assert outcome.snapshot.id == first.snapshot.id

    def test_a_404_is_not_retried(self, app: App, server: SandboxServer) -> None:
        server.inject("sor.zip", status=404, times=10)
        outcome = _sync(app, server)
        assert outcome.status is RunStatus.FAILED
        assert [s for _, p, s in _file_requests(server) if p == "/sor.zip"] == [404]
        assert _snapshot_id(app) is None

    def test_a_body_cut_short_every_time_never_becomes_a_snapshot(
        self, app: App, server: SandboxServer
    ) -> None:
        first = _sync(app, server)
        server.set_day(1)
        server.inject("sor.zip", truncate=500, times=10)
        outcome = _sync(app, server)
        assert outcome.status is RunStatus.FAILED
        assert _snapshot_id(app) == first.snapshot.id


class _GzippingMirror(http.server.ThreadingHTTPServer):
    """A mirror that gzips the zips whatever the client asks, with ``Content-Encoding: gzip``
    and the Content-Length of the gzipped body (as a web server with compression on does)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.accept_encodings: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _GzipHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _GzipHandler(http.server.BaseHTTPRequestHandler):
    server: _GzippingMirror

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.server.accept_encodings.append(self.headers.get("Accept-Encoding"))
        path = self.server.directory / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        body = gzip.compress(path.read_bytes())
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gzipping_mirror(sandbox_dir: Path) -> Iterator[_GzippingMirror]:
    mirror = _GzippingMirror(sandbox_dir / "day-000")
    thread = threading.Thread(target=mirror.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        mirror.shutdown()
        mirror.server_close()
        thread.join(5)


class TestContentEncoding:
    def test_a_mirror_that_gzips_the_zips_anyway_is_read_whole_and_stored(
        self, app: App, gzipping_mirror: _GzippingMirror, sandbox_dir: Path
    ) -> None:
        client = app.files_client(base_url=gzipping_mirror.base_url)
        outcome = sync_source(app.uow_factory, client, app.sync_config())
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        with app.uow() as uow:
            run = uow.runs.get(outcome.run_id)
        assert run is not None
        for name in ("sor.zip", "Sor_complete.zip"):
            original = hashlib.sha256((sandbox_dir / "day-000" / name).read_bytes()).hexdigest()
            assert run.content_hashes[name] == original  # the file, not its gzipped form
        assert gzipping_mirror.accept_encodings == ["identity", "identity"]
