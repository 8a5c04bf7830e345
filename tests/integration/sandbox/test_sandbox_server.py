"""The sandbox server: sor-filer over loopback, conditional requests, faults, control endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from soredi_sync.sandbox.generate import Manifest, generate
from soredi_sync.sandbox.http_handler import STATUS_RESET
from soredi_sync.sandbox.server import SandboxServer, serve_forever


@pytest.fixture
def server(tiny: tuple[Path, Manifest]) -> Iterator[SandboxServer]:
    with SandboxServer(tiny[0]) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def _file(tiny: tuple[Path, Manifest], day: int, name: str) -> bytes:
    return (tiny[0] / f"day-{day:03d}" / name).read_bytes()


class TestServing:
    def test_serves_the_current_days_files_with_etag_and_last_modified(
        self, server: SandboxServer, client: httpx.Client, tiny: tuple[Path, Manifest]
    ) -> None:
        _, manifest = tiny
        for name in ("sor.zip", "Sor_complete.zip"):
            response = client.get(server.url(name))
            assert response.status_code == 200
            assert response.content == _file(tiny, 0, name)
            assert response.headers["ETag"] == f'"{manifest.day(0).sha256(name)}"'
            assert response.headers["Content-Type"] == "application/zip"
            assert int(response.headers["Content-Length"]) == len(response.content)
            modified = parsedate_to_datetime(response.headers["Last-Modified"])
            assert modified.date().isoformat() == manifest.day(0).snapshot_date

    def test_base_url_is_loopback_with_the_bound_port(self, server: SandboxServer) -> None:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/")
        assert int(server.base_url.rsplit(":", 1)[1].rstrip("/")) > 0

    def test_head_gives_the_headers_without_a_body(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        full = client.get(server.url("sor.zip"))
        head = client.head(server.url("sor.zip"))
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["ETag"] == full.headers["ETag"]
        assert head.headers["Content-Length"] == full.headers["Content-Length"]

    def test_if_none_match_with_the_current_etag_gives_304(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        etag = client.get(server.url("sor.zip")).headers["ETag"]
        again = client.get(server.url("sor.zip"), headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["ETag"] == etag
        other = client.get(server.url("sor.zip"), headers={"If-None-Match": '"other"'})
        assert other.status_code == 200

    def test_if_modified_since_gives_304_and_an_older_date_gives_200(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        last_modified = client.get(server.url("Sor_complete.zip")).headers["Last-Modified"]
        same = client.get(
            server.url("Sor_complete.zip"), headers={"If-Modified-Since": last_modified}
        )
        assert same.status_code == 304
        earlier = parsedate_to_datetime(last_modified) - timedelta(days=1)
        older = client.get(
            server.url("Sor_complete.zip"),
            headers={"If-Modified-Since": format_datetime(earlier, usegmt=True)},
        )
        assert older.status_code == 200

    def test_switching_the_day_changes_content_and_etag(
        self, server: SandboxServer, client: httpx.Client, tiny: tuple[Path, Manifest]
    ) -> None:
        first = client.get(server.url("sor.zip"))
        server.set_day(2)
        second = client.get(server.url("sor.zip"), headers={"If-None-Match": first.headers["ETag"]})
        assert second.status_code == 200
        assert second.content == _file(tiny, 2, "sor.zip")
        assert second.headers["ETag"] != first.headers["ETag"]
        assert parsedate_to_datetime(second.headers["Last-Modified"]) > parsedate_to_datetime(
            first.headers["Last-Modified"]
        )

    def test_a_day_the_directory_lacks_is_refused(self, server: SandboxServer) -> None:
        with pytest.raises(ValueError, match="no day 9"):
            server.set_day(9)
        assert server.day == 0
        assert server.available_days() == [0, 1, 2, 3]

    def test_days_a_shorter_regeneration_left_behind_are_not_served(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        generate(tmp_path, "tiny", days=1)
        generate(tmp_path, "tiny", days=0)
        assert "older folders" in caplog.text
        server = SandboxServer(tmp_path)
        assert server.available_days() == [0]
        with pytest.raises(ValueError):
            server.set_day(1)

    def test_unknown_paths_are_404(self, server: SandboxServer, client: httpx.Client) -> None:
        assert client.get(server.url("manifest.json")).status_code == 404
        assert client.get(server.url("day-000/sor.zip")).status_code == 404
        assert client.get(server.url("sor.zip/more")).status_code == 404

    def test_paths_are_configurable(
        self, tiny: tuple[Path, Manifest], client: httpx.Client
    ) -> None:
        with SandboxServer(tiny[0], xml_path="filer/sor.zip", csv_path="filer/csv.zip") as server:
            assert client.get(server.url("filer/sor.zip")).content == _file(tiny, 0, "sor.zip")
            csv_zip = client.get(server.url("filer/csv.zip")).content
            assert csv_zip == _file(tiny, 0, "Sor_complete.zip")
            assert client.get(server.url("sor.zip")).status_code == 404

    def test_requests_are_recorded_without_control_calls(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        client.get(server.url("sor.zip"))
        client.head(server.url("Sor_complete.zip"))
        client.get(server.url("nothing"))
        client.get(server.url("_sandbox/state"))
        assert server.requests == [
            ("GET", "/sor.zip", 200),
            ("HEAD", "/Sor_complete.zip", 200),
            ("GET", "/nothing", 404),
        ]
        server.clear_requests()
        assert server.requests == []

    def test_stop_releases_the_port(self, tiny: tuple[Path, Manifest]) -> None:
        server = SandboxServer(tiny[0]).start()
        url = server.url("sor.zip")
        server.stop()
        with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2.0) as http:
            http.get(url)
        with pytest.raises(RuntimeError):
            _ = server.base_url


class TestFaults:
    def test_status_fault_with_retry_after_then_recovers(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject("sor.zip", status=503, headers={"Retry-After": "2"}, times=2)
        for _ in range(2):
            response = client.get(server.url("sor.zip"))
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "2"
        assert client.get(server.url("sor.zip")).status_code == 200
        assert [status for _, _, status in server.requests] == [503, 503, 200]

    def test_a_fault_on_one_path_leaves_the_other_alone(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject("/Sor_complete.zip", status=500)
        assert client.get(server.url("sor.zip")).status_code == 200
        assert client.get(server.url("Sor_complete.zip")).status_code == 500
        assert client.get(server.url("Sor_complete.zip")).status_code == 200

    def test_a_fault_without_path_hits_any_file(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject(None, status=429, headers={"Retry-After": "1"})
        assert client.get(server.url("Sor_complete.zip")).status_code == 429
        assert client.get(server.url("sor.zip")).status_code == 200

    def test_delay_fault_is_observable_and_can_time_out(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject("sor.zip", delay=0.3)
        started = time.monotonic()
        assert client.get(server.url("sor.zip")).status_code == 200
        assert time.monotonic() - started >= 0.3
        server.inject("sor.zip", delay=2.0)
        with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.2) as impatient:
            impatient.get(server.url("sor.zip"))

    def test_truncated_body_is_detected_by_the_client(
        self, server: SandboxServer, client: httpx.Client, tiny: tuple[Path, Manifest]
    ) -> None:
        server.inject("sor.zip", truncate=1000)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(server.url("sor.zip"))
        # a streaming reader sees the promised length and the bytes that did arrive
        server.inject("sor.zip", truncate=1000)
        received = bytearray()
        with client.stream("GET", server.url("sor.zip")) as response:
            assert int(response.headers["Content-Length"]) == len(_file(tiny, 0, "sor.zip"))
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received.extend(chunk)
        assert bytes(received) == _file(tiny, 0, "sor.zip")[:1000]
        assert client.get(server.url("sor.zip")).status_code == 200

    def test_reset_closes_the_connection_without_an_answer(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject("Sor_complete.zip", reset=True)
        with pytest.raises(httpx.TransportError) as caught:
            client.get(server.url("Sor_complete.zip"))
        assert not isinstance(caught.value, httpx.TimeoutException)
        assert server.requests[-1] == ("GET", "/Sor_complete.zip", STATUS_RESET)
        assert client.get(server.url("Sor_complete.zip")).status_code == 200

    def test_faults_can_be_cleared(self, server: SandboxServer, client: httpx.Client) -> None:
        server.inject("sor.zip", status=500, times=5)
        assert len(server.faults) == 1
        server.clear_faults()
        assert server.faults == []
        assert client.get(server.url("sor.zip")).status_code == 200

    @pytest.mark.parametrize(
        "kwargs",
        [{}, {"status": 42}, {"delay": -1.0}, {"truncate": -5}, {"status": 500, "times": 0}],
    )
    def test_an_impossible_fault_is_refused(
        self, server: SandboxServer, kwargs: dict[str, object]
    ) -> None:
        with pytest.raises(ValueError):
            server.inject("sor.zip", **kwargs)  # type: ignore[arg-type]


class TestControlEndpoints:
    def test_state_reports_day_faults_and_requests(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        client.get(server.url("sor.zip"))
        server.inject("sor.zip", status=502)
        state = client.get(server.url("_sandbox/state")).json()
        assert state["day"] == 0
        assert state["days"] == [0, 1, 2, 3]
        assert state["requests"] == 1
        assert state["faults"][0]["status"] == 502
        assert state["base_url"] == server.base_url

    def test_post_day_switches_the_served_day(
        self, server: SandboxServer, client: httpx.Client, tiny: tuple[Path, Manifest]
    ) -> None:
        response = client.post(server.url("_sandbox/day/3"))
        assert response.status_code == 200
        assert response.json()["day"] == 3
        assert client.get(server.url("sor.zip")).content == _file(tiny, 3, "sor.zip")

    def test_post_day_for_a_missing_or_malformed_day_is_refused(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        assert client.post(server.url("_sandbox/day/42")).status_code == 404
        assert client.post(server.url("_sandbox/day/two")).status_code == 400
        assert server.day == 0

    def test_post_fault_injects_a_fault(self, server: SandboxServer, client: httpx.Client) -> None:
        response = client.post(
            server.url("_sandbox/fault"),
            json={"path": "sor.zip", "status": 503, "headers": {"Retry-After": "7"}},
        )
        assert response.status_code == 201
        failed = client.get(server.url("sor.zip"))
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"

    @pytest.mark.parametrize(
        "body", [{"status": 99}, {"path": "sor.zip"}, {"bogus": 1}, ["not", "an", "object"]]
    )
    def test_a_bad_fault_is_400(
        self, server: SandboxServer, client: httpx.Client, body: object
    ) -> None:
        assert client.post(server.url("_sandbox/fault"), json=body).status_code == 400
        assert server.faults == []

    def test_delete_fault_clears_all_faults(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        server.inject(None, status=500, times=3)
        assert client.delete(server.url("_sandbox/fault")).status_code == 200
        assert server.faults == []

    def test_head_on_a_control_route_has_no_body(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        response = client.head(server.url("_sandbox/state"))
        assert response.content == b""
        assert client.get(server.url("sor.zip")).status_code == 200  # connection still usable

    def test_unknown_control_route_is_404(
        self, server: SandboxServer, client: httpx.Client
    ) -> None:
        assert client.get(server.url("_sandbox/nothing")).status_code == 404


class TestLoopbackOnly:
    @pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
    def test_a_non_loopback_host_is_refused(self, tiny: tuple[Path, Manifest], host: str) -> None:
        with pytest.raises(ValueError, match="non-loopback"):
            SandboxServer(tiny[0], host=host)

    def test_localhost_names_are_accepted(self, tiny: tuple[Path, Manifest]) -> None:
        for host in ("localhost", "127.0.0.1", "127.0.0.2", "::1"):
            SandboxServer(tiny[0], host=host)  # constructing does not bind

    def test_serve_forever_serves_until_stopped(
        self, tiny: tuple[Path, Manifest], client: httpx.Client
    ) -> None:
        ready: list[SandboxServer] = []
        started = threading.Event()

        def on_ready(server: SandboxServer) -> None:
            ready.append(server)
            started.set()

        thread = threading.Thread(
            target=serve_forever,
            kwargs={"directory": tiny[0], "port": 0, "day": 1, "on_ready": on_ready},
            daemon=True,
        )
        thread.start()
        assert started.wait(5)
        response = client.get(ready[0].url("sor.zip"))
        assert response.content == _file(tiny, 1, "sor.zip")
        ready[0].stop()
        thread.join(5)
        assert not thread.is_alive()
