"""How the sor-filer sandbox answers one HTTP request: the day's zip files with ``ETag`` and
``Last-Modified`` (304 on a conditional request), the injected faults (:class:`Fault`), and the
``/_sandbox/`` control endpoints. The state it answers from is the
:class:`~soredi_sync.sandbox.server.SandboxServer` the handler serves for.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from soredi_sync.sandbox.loopback import QuietHandler

CONTROL_PREFIX = "/_sandbox/"
_MAX_CONTROL_BODY = 64 * 1024
_CHUNK = 256 * 1024
STATUS_RESET = 0  # recorded in SandboxServer.requests for a connection reset without an answer


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests.

    ``path`` None matches every file path (never the control endpoints). Effects combine in
    this order: ``delay`` first, then ``reset`` (no answer), else ``status`` (an error answer
    with ``headers``), else ``truncate`` (a 200 whose body stops after that many bytes while
    ``Content-Length`` promises the whole file).
    """

    path: str | None
    status: int | None = None
    delay: float | None = None
    truncate: int | None = None
    times: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    reset: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if self.delay is not None and self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay!r}")
        if self.truncate is not None and self.truncate < 0:
            raise ValueError(f"truncate must be >= 0, got {self.truncate!r}")
        if self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times!r}")
        if self.status is None and self.delay is None and self.truncate is None and not self.reset:
            raise ValueError("a fault needs a status, delay, truncate or reset")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = dict(self.headers)
        return data


def normalise_path(path: str) -> str:
    """The path of a request target, with one leading slash (``/sor.zip``)."""
    return "/" + urlsplit(path).path.lstrip("/")


class FilesHandler(QuietHandler):
    """Answers for ``self.server.owner``, a :class:`~soredi_sync.sandbox.server.SandboxServer`."""

    server_version = "soredi-sandbox"

    # -- dispatch --

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = normalise_path(self.path)
        sandbox = self.server.owner
        if path.startswith(CONTROL_PREFIX) and sandbox.control:
            self._control(method, path[len(CONTROL_PREFIX) :])
            return
        if method not in ("GET", "HEAD"):
            self.close_connection = True  # any request body is left unread
            self._simple(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET, HEAD"}, method, head=False)
            sandbox._record(method, path, HTTPStatus.METHOD_NOT_ALLOWED)
            return
        self._serve_file(method, path)

    # -- files --

    def _serve_file(self, method: str, path: str) -> None:
        sandbox = self.server.owner
        head = method == "HEAD"
        fault = sandbox._take_fault(path)
        if fault is not None:
            if fault.delay:
                sandbox._stopping.wait(fault.delay)
            if fault.reset:
                self._reset()
                sandbox._record(method, path, STATUS_RESET)
                return
            if fault.status is not None:
                self._simple(fault.status, fault.headers, "sandbox fault", head=head)
                sandbox._record(method, path, fault.status)
                return
        target = sandbox._file_for(path)
        if target is None or not target.is_file():
            self._simple(HTTPStatus.NOT_FOUND, {}, "not found", head=head)
            sandbox._record(method, path, HTTPStatus.NOT_FOUND)
            return
        etag = sandbox._etag(target)
        last_modified = sandbox._last_modified(target)
        validators = {
            "ETag": etag,
            "Last-Modified": format_datetime(last_modified, usegmt=True),
        }
        if self._not_modified(etag, last_modified):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in validators.items():
                self.send_header(name, value)
            self.end_headers()
            sandbox._record(method, path, HTTPStatus.NOT_MODIFIED)
            return
        size = target.stat().st_size
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(size))
        for name, value in validators.items():
            self.send_header(name, value)
        if fault is not None:
            for name, value in fault.headers.items():
                self.send_header(name, value)
        self.end_headers()
        sandbox._record(method, path, HTTPStatus.OK)
        if head:
            return
        limit = fault.truncate if fault is not None and fault.truncate is not None else None
        with target.open("rb") as fh:
            remaining = size if limit is None else min(limit, size)
            while remaining > 0:
                chunk = fh.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        if limit is not None and limit < size:
            # Content-Length promised the whole file: closing now is what a dropped transfer
            # looks like to the client.
            self.wfile.flush()
            self.close_connection = True

    def _not_modified(self, etag: str, last_modified: datetime) -> bool:
        # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since when both are present.
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip() for t in if_none_match.split(",")]
            return "*" in tags or etag in tags or f"W/{etag}" in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            return last_modified <= since
        return False

    def _simple(self, status: int, headers: Mapping[str, str], text: str, *, head: bool) -> None:
        body = f"{int(status)} {text}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout turns the close into a TCP RST: the client sees
        # "connection reset" rather than an orderly end of stream.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()

    # -- control --

    def _control(self, method: str, route: str) -> None:
        sandbox = self.server.owner
        try:
            body = self._read_body()
            if method == "GET" and route == "state":
                self._json(HTTPStatus.OK, sandbox.state())
            elif method == "POST" and route.startswith("day/"):
                try:
                    day = int(route[len("day/") :])
                except ValueError:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": "day must be an integer"})
                    return
                try:
                    sandbox.set_day(day)
                except ValueError as exc:
                    self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
                    return
                self._json(HTTPStatus.OK, sandbox.state())
            elif method == "POST" and route == "fault":
                try:
                    spec = json.loads(body or b"{}")
                    if not isinstance(spec, dict):
                        raise ValueError("the fault must be a JSON object")
                    allowed = {"path", "status", "delay", "truncate", "times", "headers", "reset"}
                    unknown = sorted(set(spec) - allowed)
                    if unknown:
                        raise ValueError(f"unknown fault fields {unknown}")
                    sandbox.inject(spec.pop("path", None), **spec)
                except (ValueError, TypeError) as exc:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                self._json(HTTPStatus.CREATED, sandbox.state())
            elif method in ("DELETE", "POST") and route in ("fault", "faults/clear"):
                sandbox.clear_faults()
                self._json(HTTPStatus.OK, sandbox.state())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no control endpoint {route!r}"})
        except _BodyTooLarge:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_CONTROL_BODY:
            self.close_connection = True
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b""


class _BodyTooLarge(Exception):
    pass


__all__ = ["CONTROL_PREFIX", "STATUS_RESET", "Fault", "FilesHandler", "normalise_path"]
