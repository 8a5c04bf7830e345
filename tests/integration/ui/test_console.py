"""The console's frame over a synced sandbox: its language, the security headers of every
answer, its assets (nothing from elsewhere), errors as pages, its settings, and the API left
as it was."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from soredi_sync.bootstrap import App
from soredi_sync.cli import cli
from soredi_sync.ui import web
from tests.support.api import make_client
from tests.support.paths import REPO_ROOT
from tests.support.ui import (
    LANG_COOKIE,
    UiClient,
    assert_console_headers,
    cookie_attributes,
    csrf_of,
    post_form,
    set_cookie,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("probe_pages")

UI = REPO_ROOT / "soredi_sync" / "ui"


# -- language ------------------------------------------------------------------------------------


class TestLanguage:
    def test_danish_is_the_default_and_english_is_a_switch_away(self, ui_client: UiClient) -> None:
        client = ui_client("audit:read")
        page = client.get("/ui/probe")
        assert '<html lang="da">' in page.text and "Log ud" in page.text
        answer = post_form(client, "/ui/lang", page="/ui/probe", lang="en", next="/ui/probe")
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/probe"
        attributes = cookie_attributes(set_cookie(answer, LANG_COOKIE))
        assert "httponly" in attributes and attributes["samesite"].lower() == "strict"
        page = client.get("/ui/probe")
        assert '<html lang="en">' in page.text and "Sign out" in page.text
        assert "Log ud" not in page.text
        post_form(client, "/ui/lang", page="/ui/probe", lang="da")
        assert "Log ud" in client.get("/ui/probe").text

    def test_the_sign_in_page_switches_too(self, visitor: TestClient) -> None:
        assert "Log ind" in visitor.get("/ui/login").text
        answer = post_form(visitor, "/ui/lang", lang="en", next="https://evil.example/")
        assert answer.headers["location"] == "/ui/"
        page = visitor.get("/ui/login")
        assert "Sign in" in page.text and "Log ind" not in page.text

    def test_an_unknown_language_is_danish(self, visitor: TestClient) -> None:
        post_form(visitor, "/ui/lang", lang="de")
        assert "Log ind" in visitor.get("/ui/login").text
        visitor.cookies.set(LANG_COOKIE, "xx", domain="testserver.local", path="/ui")
        assert '<html lang="da">' in visitor.get("/ui/login").text

    def test_error_pages_are_translated(self, ui_client: UiClient) -> None:
        english = ui_client("route:read", lang="en")
        page = english.get("/ui/no/such/page")
        assert page.status_code == 404 and "There is no page at this address." in page.text
        danish = ui_client("route:read")
        assert "Der er ingen side på denne adresse." in danish.get("/ui/no/such/page").text


# -- headers, assets, the API --------------------------------------------------------------------


class TestHeadersAndAssets:
    def test_every_answer_carries_the_security_headers(
        self, visitor: TestClient, ui_client: UiClient
    ) -> None:
        answers = [
            visitor.get("/ui/login"),
            visitor.get("/ui/probe", follow_redirects=False),
            visitor.get("/ui/static/console.css"),
            visitor.get("/ui/static/nothing.css", follow_redirects=False),
            visitor.post("/ui/logout", follow_redirects=False),
            sign_in(visitor, "sst_nothing"),
        ]
        client = ui_client("audit:read")
        answers += [
            client.get("/ui/probe"),
            client.get("/ui/no/such/page"),
            client.get("/ui/probe?x=1", headers={"accept": "application/json"}),
            post_form(client, "/ui/logout", page="/ui/probe"),
        ]
        for answer in answers:
            assert_console_headers(answer)

    def test_signed_in_pages_are_not_stored(self, ui_client: UiClient) -> None:
        client = ui_client("audit:read")
        assert client.get("/ui/probe").headers["cache-control"] == "no-store"
        assert client.get("/ui/login", follow_redirects=False).headers["cache-control"] == (
            "no-store"
        )

    def test_the_stylesheet_is_served_and_nothing_else_from_static(
        self, visitor: TestClient
    ) -> None:
        css = visitor.get("/ui/static/console.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        for path in ("/ui/static/../web.py", "/ui/static/%2e%2e%2fweb.py", "/ui/static/x.py"):
            answer = visitor.get(path, follow_redirects=False)
            assert answer.status_code in (303, 404), path
            assert "import" not in answer.text

    def test_no_template_or_stylesheet_names_an_external_url(self) -> None:
        external = re.compile(
            r"""(?:https?:)?//[\w.-]+\.\w|@import|(?:src|href|action)\s*=\s*["']?\s*(?:data|javascript):""",
            re.IGNORECASE,
        )
        files = [*(UI / "templates").glob("*.html"), *(UI / "static").iterdir()]
        assert files
        found = {
            f"{path.name}: {match.group(0)}"
            for path in files
            for match in external.finditer(path.read_text(encoding="utf-8"))
        }
        assert not found

    def test_no_template_has_an_inline_script_or_style(self) -> None:
        inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)
        found = {
            f"{path.name}: {match.group(0)}"
            for path in (UI / "templates").glob("*.html")
            for match in inline.finditer(path.read_text(encoding="utf-8"))
        }
        assert not found

    def test_the_api_document_has_no_console_path(self, client: TestClient) -> None:
        document = client.get("/openapi.json").json()
        assert not [path for path in document["paths"] if path.startswith("/ui")]
        committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
        assert document["paths"].keys() == committed["paths"].keys()

    def test_the_api_does_not_take_the_session_cookie(self, ui_client: UiClient) -> None:
        client = ui_client("registry:read")
        assert client.get("/v1/changes").status_code == 401


class TestErrors:
    def test_the_use_cases_errors_and_bugs_are_pages(
        self, ui_client: UiClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = ui_client("audit:read")
        expected = {
            "missing": (404, "Der blev ikke fundet noget for 424242."),
            "unsynced": (503, "Der er ikke synkroniseret noget endnu"),
            "bug": (500, "Der gik noget galt på serveren."),
        }
        for kind, (status, said) in expected.items():
            answer = client.get(f"/ui/probe/{kind}")
            assert answer.status_code == status
            assert said in answer.text and "Log ud" in answer.text  # in the layout
            assert_console_headers(answer)
        assert "Console page /ui/probe/bug failed" in caplog.text
        assert "RuntimeError: a bug" in caplog.text

    def test_the_console_root_goes_to_the_overview(self, visitor: TestClient) -> None:
        answer = visitor.get("/ui", follow_redirects=False)
        assert answer.status_code == 308 and answer.headers["location"] == "/ui/"


class TestSettings:
    def test_config_show_lists_the_console_settings_with_the_key_masked(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = "a-console-signing-key-" + "z" * 20
        monkeypatch.setenv("SOREDI_UI__SECRET_KEY", key)
        result = CliRunner().invoke(cli, ["config", "show", "--json"])
        assert result.exit_code == 0, result.output
        assert key not in result.output
        settings = json.loads(result.output)["settings"]
        assert settings["ui.secret_key"]["value"] == "**********"
        assert settings["ui.secret_key"]["origin"] == "SOREDI_UI__SECRET_KEY"
        assert settings["ui.session_hours"]["value"] == 8

    def test_the_settings_file_documents_them(self) -> None:
        text = (REPO_ROOT / "config" / "soredi-sync.toml").read_text(encoding="utf-8")
        assert tomllib.loads(text)["ui"] == {}  # documented, commented out
        assert "# secret_key = " in text and "# session_hours = 8" in text

    def test_without_a_key_the_start_warns_and_with_one_the_key_is_never_logged(
        self,
        synced_app: App,
        token: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        with caplog.at_level(logging.DEBUG), make_client(synced_app):
            pass
        assert "secret_key is not set" in caplog.text
        caplog.clear()
        key = "k3y-" + "q" * 40
        ui = synced_app.settings.ui.model_copy(update={"secret_key": SecretStr(key)})
        monkeypatch.setattr(synced_app.settings, "ui", ui)
        with caplog.at_level(logging.DEBUG), make_client(synced_app) as client:
            secret = token()
            sign_in(client, secret)
            client.get("/ui/probe")
            post_form(client, "/ui/logout", page="/ui/probe")
        assert "secret_key is not set" not in caplog.text
        assert key not in caplog.text and secret not in caplog.text
        assert "Console sign-in with API token" in caplog.text


# -- the building blocks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("/ui/", True),
        ("/ui", True),
        ("/ui/audit?owner=1&page=2", True),
        ("/ui/registry#unit", True),
        ("//evil.example", False),
        ("https://evil.example/ui/", False),
        ("/ui/\\..", False),
        ("/ui/../x", False),
        ("/ui/a b", False),
        ("/ui/\t", False),
        (None, False),
        (42, False),
    ],
)
def test_safe_next(value: object, safe: bool) -> None:
    assert web.safe_next(value) == (value if safe else None)


def test_url_leaves_out_empty_values_and_repeats_lists() -> None:
    assert web.url("/ui/audit") == "/ui/audit"
    assert web.url("/ui/audit", owner="1", rule=None, q="", severity=["error", "warning"]) == (
        "/ui/audit?owner=1&severity=error&severity=warning"
    )
    assert web.url("/ui/registry", q="æ ø&") == "/ui/registry?q=%C3%A6+%C3%B8%26"


def test_the_csrf_field_of_a_page_is_found() -> None:
    assert csrf_of('<input type="hidden" name="csrf_token" value="abc">') == "abc"


def test_the_templates_folder_is_where_render_looks() -> None:
    assert Path(web.__file__).parent / "templates" == UI / "templates"
