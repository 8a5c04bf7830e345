"""Signing in and out of the console, and its language: ``GET/POST /ui/login`` (an API token
pasted once becomes a signed session cookie holding its hash), ``POST /ui/logout`` and
``POST /ui/lang``. Every POST carries the session's CSRF token."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from soredi_sync.services.tokens import hash_token
from soredi_sync.ui import cookies
from soredi_sync.ui.i18n import N_
from soredi_sync.ui.web import (
    HOME_PATH,
    LOGIN_PATH,
    check_csrf,
    context,
    render,
    safe_next,
    translate,
)

logger = logging.getLogger(__name__)

router = APIRouter()

# Tokens are 47 characters; anything much longer is not one and is not looked up.
MAX_TOKEN_LENGTH = 200


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/login")
async def login_page(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form; a visitor already signed in goes on to ``next``."""
    target = safe_next(next_path)
    session = cookies.read_session(request, context(request).app.settings.ui)
    if session is not None and session.token_hash is not None:
        record = await run_in_threadpool(context(request).verifier.verify_hash, session.token_hash)
        if record is not None:
            return RedirectResponse(target or HOME_PATH, status_code=303)
    return render(request, "login.html", None, next=target, error=None)


@router.post("/login")
async def sign_in(request: Request) -> Response:
    """An API token → a session; a wrong, unknown or revoked one → the form again, with why."""
    await check_csrf(request)
    form = await request.form()
    token = _field(form, "token").strip()
    target = safe_next(_field(form, "next"))
    record = None
    if token and len(token) <= MAX_TOKEN_LENGTH:
        record = await run_in_threadpool(context(request).verifier.verify, token)
    if record is None:
        message = (
            N_("The token is unknown, revoked or mistyped.")
            if token
            else N_("Paste an API token to sign in.")
        )
        return _login_again(request, target, translate(request, message))
    response = RedirectResponse(target or HOME_PATH, status_code=303)
    ui = context(request).app.settings.ui
    cookies.set_session(response, request, cookies.Session.new(hash_token(token)), ui)
    logger.info("Console sign-in with API token %d (%s)", record.id, record.name)
    return response


def _login_again(request: Request, target: str | None, error: str) -> HTMLResponse:
    return render(request, "login.html", None, status_code=400, next=target, error=error)


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    await check_csrf(request)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    cookies.clear_session(response, request)
    return response


@router.post("/lang")
async def switch_language(request: Request) -> Response:
    """Remember ``lang`` (da or en) and go back to ``next``."""
    await check_csrf(request)
    form = await request.form()
    lang = _field(form, "lang")
    if lang not in cookies.LANGUAGES:
        lang = cookies.DEFAULT_LANGUAGE
    response = RedirectResponse(safe_next(_field(form, "next")) or HOME_PATH, status_code=303)
    cookies.set_language(response, request, lang)
    return response
