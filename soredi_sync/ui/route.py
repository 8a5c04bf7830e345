"""How the console answers: :class:`UiRoute`, the route class of every ``/ui`` route. It sends
a visitor who is not signed in to the sign-in page, shows errors as pages in the console's
layout (translated, with the right status), and puts the security headers on every answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from markupsafe import escape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from soredi_sync.ports.records import TokenRecord
from soredi_sync.ui import cookies
from soredi_sync.ui.errors import (
    FAILED,
    INVALID_INPUT,
    NOT_ANSWERED,
    SignInRequired,
    UiError,
    UiNotFound,
    from_use_case,
)
from soredi_sync.ui.web import HOME_PATH, language, login_url, render, safe_next, translate

logger = logging.getLogger(__name__)

# No inline script or style anywhere (no 'unsafe-inline'): charts are SVG elements styled by
# classes of console.css, and there is no script but what /ui/static serves.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def timed(response: Response, started: float) -> Response:
    """The server's time on the answer, as ``Server-Timing: app;dur=<ms>`` (what the console
    benchmark reads, and a browser's developer tools show)."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
    return response


def harden(response: Response) -> Response:
    """The security headers of every console answer; ``no-store`` unless it says otherwise
    (only the static files do)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    caller: TokenRecord | None = getattr(request.state, "ui_caller", None)
    return render(
        request,
        "error.html",
        caller,
        status_code=status,
        status=status,
        title=title,
        message=message,
    )


def _page_of(request: Request, error: UiError) -> HTMLResponse:
    return error_page(
        request,
        error.status,
        translate(request, error.title),
        translate(request, error.message, **error.params),
    )


def _arrived_from_another_site(request: Request) -> bool:
    headers = request.headers
    return (
        request.method == "GET"
        and headers.get("sec-fetch-site") == "cross-site"
        and headers.get("sec-fetch-mode") == "navigate"
    )


def bounce(request: Request) -> HTMLResponse:
    """A link from another site (an e-mail, an issue) arrives without the SameSite=Strict
    session cookie, and the sign-in page would then replace it with a visitor's. This answer
    sets no cookie and loads the same address again from this site, cookie and all."""
    here = safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    target = escape(here or HOME_PATH)
    return HTMLResponse(
        f'<!doctype html><html lang="{language(request)}"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={target}"><title>soredi-sync</title>'
        f'</head><body><p><a href="{target}">soredi-sync</a></p></body></html>'
    )


class UiRoute(APIRoute):
    """A console route (``ui_router`` serves every page through it)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def ui_handler(request: Request) -> Response:
            started = time.perf_counter()
            if _arrived_from_another_site(request):
                return timed(harden(bounce(request)), started)
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = RedirectResponse(login_url(exc.next_path), status_code=303)
                if exc.ended:
                    cookies.clear_session(response, request)
            except UiError as exc:
                response = _page_of(request, exc)
            except RequestValidationError:
                response = _page_of(request, UiError(INVALID_INPUT))
            except StarletteHTTPException as exc:
                kind = UiNotFound if exc.status_code == 404 else UiError
                error = kind(NOT_ANSWERED)
                error.status = exc.status_code
                response = _page_of(request, error)
            except Exception as exc:
                known = from_use_case(exc)
                if known is None:
                    logger.exception("Console page %s failed", request.url.path)
                    known = UiError(FAILED)
                    known.status = 500
                response = _page_of(request, known)
            return timed(harden(response), started)

        return ui_handler
