"""Driving the web console in TestClient tests: sign in, the CSRF token of a page, the
security headers every console answer has.

The fixture built on these (``ui_client``) lives in ``tests/fixtures/ui.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient

# The ``ui_client`` fixture: ``ui_client("audit:read", owners=(...), lang="en")``.
UiClient = Callable[..., TestClient]

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "soredi_session"
LANG_COOKIE = "soredi_lang"


def csrf_of(html: str) -> str:
    """The CSRF token of the forms of a rendered page."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def page_csrf(client: TestClient, path: str = "/ui/login") -> str:
    """GET ``path`` (the sign-in page by default) and return its CSRF token; the visit also
    gives a new visitor the session cookie the token belongs to."""
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def sign_in(client: TestClient, token: str, next_path: str | None = None) -> httpx.Response:
    """Sign ``client`` in with ``token`` through the form; the answer, not followed."""
    data = {"csrf_token": page_csrf(client), "token": token}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/ui/login", data=data, follow_redirects=False)


def post_form(
    client: TestClient, path: str, page: str = "/ui/login", **data: Any
) -> httpx.Response:
    """POST ``data`` to ``path`` with the CSRF token read from ``page``; not followed."""
    return client.post(
        path, data={"csrf_token": page_csrf(client, page), **data}, follow_redirects=False
    )


def assert_console_headers(response: httpx.Response) -> None:
    """What every console answer carries: a strict CSP, no framing, a referrer policy."""
    headers = response.headers
    policy = headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives.get("script-src", ["'self'"]) == ["'self'"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin")
    assert headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r"app;dur=\d+\.\d", headers["server-timing"]), headers["server-timing"]


def set_cookie(response: httpx.Response, name: str) -> str:
    """The one ``Set-Cookie`` header of ``response`` that sets ``name``."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header


def cookie_attributes(header: str) -> dict[str, str]:
    """The attributes of a ``Set-Cookie`` header, names in lower case (flags map to "")."""
    parts = [p.strip() for p in header.split(";")]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1) + [""])[1] for p in parts[1:]}


def goes_to_sign_in(response: httpx.Response) -> str:
    """The ``next`` of a redirect to the sign-in page (``""`` when it has none)."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/ui/login" and not location.netloc
    return parse_qs(location.query).get("next", [""])[0]
