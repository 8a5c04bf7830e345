"""Signing in to the console and out of it over a synced sandbox: the session cookie and what
ends it, CSRF on every POST, and the way back to where one was going (never off the site)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from pydantic import SecretStr

from soredi_sync.bootstrap import App
from soredi_sync.services.tokens import create_token, revoke_token
from tests.support.api import api_uow, make_client
from tests.support.ui import (
    LANG_COOKIE,
    SESSION_COOKIE,
    UiClient,
    assert_console_headers,
    cookie_attributes,
    goes_to_sign_in,
    page_csrf,
    post_form,
    set_cookie,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("probe_pages")


# -- signing in ----------------------------------------------------------------------------------


class TestSignIn:
    def test_a_valid_token_gives_a_signed_httponly_strict_cookie_without_the_token(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        secret = token("audit:read")
        answer = sign_in(visitor, secret)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/"
        header = set_cookie(answer, SESSION_COOKIE)
        attributes = cookie_attributes(header)
        assert "httponly" in attributes
        assert attributes["samesite"].lower() == "strict"
        assert attributes["max-age"] == str(8 * 3600)
        assert attributes["path"] == "/ui"
        assert "secure" not in attributes  # plain http here; https below
        value = header.split(";", 1)[0].split("=", 1)[1]
        assert secret not in value and secret[4:] not in value
        assert visitor.get("/ui/probe").status_code == 200

    def test_over_https_the_cookie_is_secure(
        self, synced_app: App, token: Callable[..., str]
    ) -> None:
        with make_client(synced_app) as client:
            client.base_url = httpx.URL("https://testserver")
            answer = sign_in(client, token())
            assert "secure" in cookie_attributes(set_cookie(answer, SESSION_COOKIE))

    def test_signing_in_goes_on_to_next(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        asked = visitor.get("/ui/probe?x=1&y=%C3%A6", follow_redirects=False)
        next_path = goes_to_sign_in(asked)
        assert next_path == "/ui/probe?x=1&y=%C3%A6"
        page = visitor.get(asked.headers["location"])
        assert f'name="next" value="{next_path.replace("&", "&amp;")}"' in page.text
        answer = sign_in(visitor, token(), next_path)
        assert answer.headers["location"] == next_path
        assert visitor.get(answer.headers["location"]).status_code == 200

    @pytest.mark.parametrize(
        "target",
        [
            "https://evil.example/ui/",
            "//evil.example/ui/",
            "/\\evil.example",
            "\\\\evil.example",
            "/ui/\\evil",
            "javascript:alert(1)",
            "/v1/registry/units",
            "/uix",
            "/ui/../v1/snapshot",
            "/ui/\r\nSet-Cookie: x=1",
            "ui/probe",
            "",
        ],
    )
    def test_next_never_leads_off_the_console(
        self, visitor: TestClient, token: Callable[..., str], target: str
    ) -> None:
        page = visitor.get("/ui/login", params={"next": target})
        [form] = re.findall(r'<form[^>]*action="/ui/login".*?</form>', page.text, re.DOTALL)
        assert 'name="next"' not in form
        answer = sign_in(visitor, token(), target)
        assert answer.headers["location"] == "/ui/"

    def test_a_signed_in_visitor_of_the_sign_in_page_goes_on(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        sign_in(visitor, token())
        answer = visitor.get("/ui/login?next=/ui/probe", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/probe"

    @pytest.mark.parametrize("kind", ["wrong", "revoked", "empty", "api-shaped", "long"])
    def test_a_wrong_or_revoked_token_is_told_on_the_form_and_gives_no_session(
        self, visitor: TestClient, token: Callable[..., str], kind: str
    ) -> None:
        secret = {
            "wrong": "sst_" + "x" * 43,
            "revoked": token(revoked=True),
            "empty": "   ",
            "api-shaped": "Bearer " + token(),
            "long": "sst_" + "y" * 5000,
        }[kind]
        answer = sign_in(visitor, secret)
        assert answer.status_code == 400
        assert 'role="alert"' in answer.text
        assert ("ukendt, tilbagekaldt" if kind != "empty" else "Indsæt et API-token") in answer.text
        assert not answer.headers.get_list("set-cookie")
        assert secret.strip() not in answer.text or not secret.strip()
        assert goes_to_sign_in(visitor.get("/ui/probe", follow_redirects=False)) == "/ui/probe"


# -- the session ---------------------------------------------------------------------------------


class TestSession:
    def test_pages_send_a_visitor_who_has_not_signed_in_to_the_sign_in_page(
        self, visitor: TestClient
    ) -> None:
        for path in ("/ui/probe", "/ui/", "/ui/no/such/page", "/ui/registry?q=1"):
            answer = visitor.get(path, follow_redirects=False)
            assert goes_to_sign_in(answer) in (path, "")
            assert_console_headers(answer)

    def test_a_tampered_cookie_signs_out(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        sign_in(visitor, token())
        value = visitor.cookies[SESSION_COOKIE]
        payload, stamp, signature = value.rsplit(".", 2)
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        for forged in (f"{payload}.{stamp}.{flipped}", "x" + value, "", "a.b.c"):
            visitor.cookies.set(SESSION_COOKIE, forged, domain="testserver.local", path="/ui")
            assert goes_to_sign_in(visitor.get("/ui/probe", follow_redirects=False))

    def test_another_process_key_does_not_accept_the_session(
        self, synced_app: App, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with make_client(synced_app) as client:
            sign_in(client, token())
            assert client.get("/ui/probe").status_code == 200
            monkeypatch.setattr("soredi_sync.ui.cookies._PROCESS_KEY", "another replica")
            assert goes_to_sign_in(client.get("/ui/probe", follow_redirects=False))

    def test_a_configured_key_signs_the_sessions(
        self, synced_app: App, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ui = synced_app.settings.ui.model_copy(update={"secret_key": SecretStr("k" * 40)})
        monkeypatch.setattr(synced_app.settings, "ui", ui)
        with make_client(synced_app) as client:
            sign_in(client, token())
            monkeypatch.setattr("soredi_sync.ui.cookies._PROCESS_KEY", "another process")
            assert client.get("/ui/probe").status_code == 200  # same key, another process

    def test_a_session_ends_after_session_hours(
        self, visitor: TestClient, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        nine_hours_ago = int(time.time()) - 9 * 3600
        with monkeypatch.context() as clock:
            clock.setattr(TimestampSigner, "get_timestamp", lambda self: nine_hours_ago)
            sign_in(visitor, token())
        assert goes_to_sign_in(visitor.get("/ui/probe", follow_redirects=False))

    def test_a_revoked_token_s_session_stops_working(
        self, synced_app: App, visitor: TestClient
    ) -> None:
        issued = create_token(api_uow(synced_app), ["audit:read"])
        sign_in(visitor, issued.token)
        assert visitor.get("/ui/probe").status_code == 200
        revoke_token(api_uow(synced_app), issued.record.id)
        answer = visitor.get("/ui/probe", follow_redirects=False)
        assert goes_to_sign_in(answer) == "/ui/probe"
        assert cookie_attributes(set_cookie(answer, SESSION_COOKIE))["max-age"] == "0"

    def test_a_link_from_another_site_keeps_the_session(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        sign_in(visitor, token())
        # what a browser says of a link followed from another site, which it sends without
        # the SameSite=Strict cookie (a TestClient sends it anyway)
        cross = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
        for path in ("/ui/probe?a=1&b=2", "/ui/login"):
            answer = visitor.get(path, headers=cross, follow_redirects=False)
            assert answer.status_code == 200
            assert not answer.headers.get_list("set-cookie")
            assert f'content="0;url={path.replace("&", "&amp;")}"' in answer.text
            assert_console_headers(answer)
        same = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"}
        assert "probe" in visitor.get("/ui/probe", headers=same).text

    def test_signing_out_clears_the_session(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        sign_in(visitor, token())
        csrf = page_csrf(visitor, "/ui/probe")
        assert visitor.get("/ui/logout", follow_redirects=False).status_code == 404
        assert visitor.get("/ui/probe").status_code == 200  # a GET does not sign out
        answer = visitor.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        assert cookie_attributes(set_cookie(answer, SESSION_COOKIE))["max-age"] == "0"
        assert SESSION_COOKIE not in visitor.cookies
        assert goes_to_sign_in(visitor.get("/ui/probe", follow_redirects=False))

    def test_scopes_and_owners_reach_the_page(self, ui_client: UiClient) -> None:
        client = ui_client("route:read", owners=("123", "45"))
        refused = client.get("/ui/probe")
        assert refused.status_code == 403
        assert "audit:read" in refused.text and "Ikke tilladt" in refused.text
        assert_console_headers(refused)
        allowed = ui_client("audit:read", owners=("123", "45"))
        assert "123,45" in allowed.get("/ui/probe").text
        assert ">all<" in ui_client("audit:read").get("/ui/probe").text


# -- CSRF ----------------------------------------------------------------------------------------


class TestCsrf:
    @pytest.mark.parametrize("path", ["/ui/login", "/ui/logout", "/ui/lang", "/ui/probe"])
    @pytest.mark.parametrize("sent", [None, "", "wrong"])
    def test_a_post_without_the_right_csrf_token_is_refused(
        self, ui_client: UiClient, path: str, sent: str | None
    ) -> None:
        client = ui_client("audit:read")
        data = {"token": client.ui_token, "lang": "en"}  # type: ignore[attr-defined]
        if sent is not None:
            data["csrf_token"] = sent
        answer = client.post(path, data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert_console_headers(answer)
        assert LANG_COOKIE not in answer.headers.get("set-cookie", "")
        assert client.get("/ui/probe").status_code == 200  # still signed in

    def test_the_token_of_another_session_is_refused(
        self, ui_client: UiClient, synced_app: App
    ) -> None:
        mine = ui_client("audit:read")
        theirs = ui_client("audit:read")
        stolen = page_csrf(theirs, "/ui/probe")
        answer = mine.post("/ui/probe", data={"csrf_token": stolen}, follow_redirects=False)
        assert answer.status_code == 403

    def test_posts_with_the_token_pass_sync_and_async(self, ui_client: UiClient) -> None:
        client = ui_client("audit:read")
        for path, said in (("/ui/probe", "ok"), ("/ui/probe-async", "async")):
            answer = post_form(client, path, page="/ui/probe")
            assert answer.status_code == 200 and said in answer.text

    def test_signing_in_gives_a_new_csrf_token(
        self, visitor: TestClient, token: Callable[..., str]
    ) -> None:
        before = page_csrf(visitor)
        sign_in(visitor, token())
        assert page_csrf(visitor, "/ui/probe") != before
