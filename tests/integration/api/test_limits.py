"""Request limits in front of the routes (api/limits.py): the token is judged before any body
byte is read, every body has a cap, and a body has a deadline.

The application is called as ASGI directly, with a ``receive`` that counts what it handed
out, so "not read" is observed rather than inferred. Real sockets against a real uvicorn are
in tests/system/faults/test_api_limits.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from tests.support.api import QUIET_LOG, World, bearer, bundle_json, route_body
from tests.support.cli_runner import Cli

BODY_ROUTES = (
    ("POST", "/v1/route"),
    ("POST", "/v1/route/message"),
    ("POST", "/v1/route/bundle"),
    ("POST", "/v1/plans"),
    ("POST", "/v1/plans/1/submit"),
    ("POST", "/v1/webhooks"),
)


@dataclass
class Exchange:
    """One request as the server saw it: what was asked of ``receive`` and what was sent."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0
    bytes_read: int = 0

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        result: dict[str, Any] = json.loads(self.body)
        return result


def call(
    api: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Callable[[int], bytes | None],
    *,
    stall_after: int | None = None,
) -> Exchange:
    """Send one request to ``api`` as uvicorn would. ``chunks(n)`` is the n-th body chunk
    (None: the body is complete); after ``stall_after`` chunks the client goes quiet."""
    exchange = Exchange()

    async def receive() -> dict[str, Any]:
        if stall_after is not None and exchange.chunks_read >= stall_after:
            await asyncio.sleep(5)  # far past the deadline under test; then the body ends
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk = chunks(exchange.chunks_read)
        exchange.chunks_read += 1
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        exchange.bytes_read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    asyncio.run(api(scope, receive, send))
    return exchange


def endless(size: int = 1024, most: int = 2_000) -> Callable[[int], bytes | None]:
    """Chunks of ``size`` bytes: more than any cap here, yet bounded (``most`` chunks)."""
    return lambda n: b"x" * size if n < most else None


def whole(body: bytes) -> Callable[[int], bytes | None]:
    return lambda n: body if n == 0 else None


@pytest.fixture
def api_of(synced_app: App) -> Iterator[Callable[..., Any]]:
    def build(**settings: Any) -> Any:
        return create_app(synced_app, ApiSettings(**settings), QUIET_LOG)

    yield build


class TestTokenBeforeBody:
    @pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
    def test_an_anonymous_request_is_refused_before_a_byte_of_its_body_is_read(
        self, api_of: Callable[..., Any], method: str, path: str
    ) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": "85000000"}
        exchange = call(api_of(), method, path, headers, endless())
        assert exchange.status == 401
        assert exchange.chunks_read == 0
        assert exchange.problem()["detail"] == "a bearer token is required"
        assert exchange.headers["connection"] == "close"
        assert exchange.headers["www-authenticate"] == 'Bearer realm="soredi-sync"'

    @pytest.mark.parametrize("authorization", ["Bearer sst_not-a-real-token", "Basic dXNlcjpw"])
    def test_a_wrong_token_is_refused_before_the_body_of_a_chunked_upload_is_read(
        self, api_of: Callable[..., Any], authorization: str
    ) -> None:
        headers = {"Transfer-Encoding": "chunked", "Authorization": authorization}
        exchange = call(api_of(), "POST", "/v1/route", headers, endless())
        assert exchange.status == 401
        assert exchange.chunks_read == 0

    def test_a_revoked_token_is_refused_before_the_body_is_read(
        self, api_of: Callable[..., Any], issue: Callable[..., str]
    ) -> None:
        token = issue("route:read", revoked=True)
        headers = {"Content-Length": "85000000", **bearer(token)}
        exchange = call(api_of(), "POST", "/v1/route", headers, endless())
        assert exchange.status == 401
        assert exchange.problem()["detail"] == "the bearer token is unknown or revoked"
        assert exchange.chunks_read == 0

    def test_a_live_token_without_the_scope_gets_403_on_the_bundle_route_unread(
        self, api_of: Callable[..., Any], issue: Callable[..., str]
    ) -> None:
        headers = {"Content-Length": "1000000", **bearer(issue("registry:read"))}
        exchange = call(api_of(), "POST", "/v1/route/bundle", headers, endless())
        assert exchange.status == 403
        assert exchange.chunks_read == 0
        assert exchange.headers["connection"] == "close"  # the unread body is not waited for

    def test_a_routing_question_with_a_live_token_is_answered_and_keeps_the_connection(
        self, api_of: Callable[..., Any], issue: Callable[..., str], world: World
    ) -> None:
        body = json.dumps(route_body(world.gln_in)).encode()
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **bearer(issue("route:read")),
        }
        exchange = call(api_of(), "POST", "/v1/route", headers, whole(body))
        assert exchange.status == 200, exchange.body
        assert "connection" not in exchange.headers


class TestBodyCaps:
    def test_a_declared_body_over_the_route_cap_is_refused_413_unread(
        self, api_of: Callable[..., Any], issue: Callable[..., str]
    ) -> None:
        headers = {"Content-Length": "4097", **bearer(issue("route:read"))}
        exchange = call(api_of(max_body_bytes=4096), "POST", "/v1/route", headers, endless())
        assert exchange.status == 413
        assert exchange.chunks_read == 0
        assert exchange.problem()["type"] == "urn:soredi-sync:problem:too-large"
        assert exchange.headers["connection"] == "close"

    def test_a_length_that_is_no_number_is_not_trusted_and_the_body_is_counted(
        self, api_of: Callable[..., Any], issue: Callable[..., str]
    ) -> None:
        # uvicorn refuses such a request itself; in process the body is counted as it arrives.
        headers = {"Content-Length": ")!CS&", **bearer(issue("route:read"))}
        exchange = call(api_of(max_body_bytes=4096), "POST", "/v1/route", headers, endless(1024))
        assert exchange.status == 413
        assert exchange.bytes_read == 4096 + 1024
        unread = call(api_of(), "GET", "/v1/changes", {**headers}, endless(1024))
        assert unread.status != 413 and unread.status < 500

    @pytest.mark.parametrize("path", ["/v1/route", "/v1/route/message", "/v1/route/bundle"])
    def test_a_chunked_body_is_refused_413_as_soon_as_it_passes_the_cap(
        self, api_of: Callable[..., Any], issue: Callable[..., str], path: str
    ) -> None:
        api = api_of(max_body_bytes=4096, max_bundle_bytes=8192)
        headers = {
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/fhir+json",
            **bearer(issue("route:read")),
        }
        exchange = call(api, "POST", path, headers, endless(1024))
        assert exchange.status == 413
        cap = 4096 if path == "/v1/route" else 8192
        assert exchange.bytes_read == cap + 1024  # the chunk that passed the cap, no more
        assert exchange.problem()["detail"] == f"the body is larger than {cap} bytes"
        assert exchange.headers["connection"] == "close"

    @pytest.mark.parametrize("path", ["/v1/route/message", "/v1/route/bundle"])
    def test_the_message_routes_take_bodies_up_to_the_bundle_limit(
        self, api_of: Callable[..., Any], issue: Callable[..., str], world: World, path: str
    ) -> None:
        body = bundle_json(world.gln_in)
        api = api_of(max_body_bytes=len(body) - 1, max_bundle_bytes=len(body))
        headers = {
            "Content-Type": "application/fhir+json",
            "Content-Length": str(len(body)),
            **bearer(issue("route:read")),
        }
        exchange = call(api, "POST", path, headers, whole(body))
        assert exchange.status == 200, exchange.body

    def test_an_over_budget_bundle_is_a_422_naming_the_budget(
        self, api_of: Callable[..., Any], issue: Callable[..., str], world: World
    ) -> None:
        bundle = json.loads(bundle_json(world.gln_in))
        bundle["entry"] += [{"resource": {"resourceType": "Basic"}}] * 5_000
        body = json.dumps(bundle).encode()
        headers = {
            "Content-Type": "application/fhir+json",
            "Content-Length": str(len(body)),
            **bearer(issue("route:read")),
        }
        api = api_of(max_bundle_elements=1_000)
        exchange = call(api, "POST", "/v1/route/bundle", headers, whole(body))
        assert exchange.status == 422
        problem = exchange.problem()
        assert problem["bundle_problem"] == "too-many-elements"
        assert "max_bundle_elements" in problem["detail"]


class TestHeadCap:
    def test_a_request_head_over_the_cap_is_refused_431_before_any_route_runs(
        self, api_of: Callable[..., Any]
    ) -> None:
        headers = {f"X-Pad-{i}": "p" * 1000 for i in range(20)}
        exchange = call(api_of(max_header_bytes=16_384), "GET", "/readyz", headers, whole(b""))
        assert exchange.status == 431
        assert exchange.problem()["type"] == "urn:soredi-sync:problem:headers-too-large"
        assert exchange.headers["connection"] == "close"

    def test_a_request_head_within_the_cap_is_served(self, api_of: Callable[..., Any]) -> None:
        headers = {f"X-Pad-{i}": "p" * 1000 for i in range(10)}
        exchange = call(api_of(max_header_bytes=16_384), "GET", "/healthz", headers, whole(b""))
        assert exchange.status == 200


class TestBodyDeadline:
    def test_a_body_that_stops_arriving_is_answered_408_at_the_deadline(
        self, api_of: Callable[..., Any], issue: Callable[..., str]
    ) -> None:
        headers = {
            "Content-Type": "application/fhir+json",
            "Content-Length": "100000",
            **bearer(issue("route:read")),
        }
        api = api_of(body_timeout_seconds=0.2)
        exchange = call(api, "POST", "/v1/route/bundle", headers, endless(), stall_after=3)
        assert exchange.status == 408
        assert exchange.problem()["type"] == "urn:soredi-sync:problem:body-timeout"
        assert exchange.headers["connection"] == "close"
        assert exchange.chunks_read == 3


class TestPublishedDocument:
    def test_every_operation_with_a_body_declares_413_and_408(self, client: TestClient) -> None:
        paths = client.get("/openapi.json").json()["paths"]
        with_body = [
            (path, method, operation)
            for path, operations in paths.items()
            for method, operation in operations.items()
            if "requestBody" in operation
        ]
        assert {(m.upper(), p) for p, m, _ in with_body} >= {
            ("POST", "/v1/route"),
            ("POST", "/v1/route/message"),
            ("POST", "/v1/route/bundle"),
            ("POST", "/v1/webhooks"),
        }
        for path, method, operation in with_body:
            for status in ("408", "413"):
                assert status in operation["responses"], (method, path, status)
                media_type = (
                    "application/fhir+json"
                    if path.startswith("/fhir/")
                    else "application/problem+json"
                )
                assert media_type in operation["responses"][status]["content"]


class TestServerConfiguration:
    """``serve`` and the daemon hand uvicorn the [api] limits (what they do on a real socket
    is tests/system/faults/test_api_limits.py)."""

    LIMITS: ClassVar[dict[str, Any]] = {
        "limit_concurrency": 123,
        "backlog": 77,
        "timeout_keep_alive": 3,
        "max_header_bytes": 9_999,
        "header_timeout_seconds": 4.0,
        "http_protocol": "h11",
    }

    @staticmethod
    def assert_limited(config: Any) -> None:
        assert (config.limit_concurrency, config.backlog, config.timeout_keep_alive) == (
            123,
            77,
            3,
        )
        assert config.h11_max_incomplete_event_size == 9_999
        assert config.http.__name__ == "GuardedH11Protocol"

    def test_serve_gives_uvicorn_the_configured_limits(
        self, cli: Cli, synced_app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import uvicorn

        seen: dict[str, Any] = {}
        monkeypatch.setattr(
            uvicorn.Server, "run", lambda server, *a, **k: seen.update(c=server.config)
        )
        for key, value in self.LIMITS.items():
            monkeypatch.setenv(f"SOREDI_API__{key.upper()}", str(value))
        cli("serve", "--port", "8099")
        self.assert_limited(seen["c"])

    def test_the_daemon_gives_uvicorn_the_configured_limits(
        self, synced_app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import uvicorn

        from soredi_sync.daemon import runner

        seen: dict[str, Any] = {}
        monkeypatch.setattr(
            uvicorn.Server, "run", lambda server, *a, **k: seen.update(c=server.config)
        )
        daemon = runner.build_daemon(synced_app)
        runner._serve_api(daemon, ApiSettings(**self.LIMITS), None, None, False)
        self.assert_limited(seen["c"])
