"""What every console page uses: the signed-in caller (``Caller``), scope checks
(``require``), rendering in the console's layout (``render``), the CSRF check of a POSTed form
(``check_csrf`` / ``form_csrf``), and the owner restriction (``owner_scope``).

Pages are plain ``def`` GET handlers in ``ui/pages/<page>.py``; ``ui_router`` serves them
through ``ui/route.py``'s ``UiRoute``, which turns the console's errors (``UiError``,
``UiForbidden``, ``UiNotFound``) into pages and puts the security headers on every answer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import anyio.from_thread
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from soredi_sync.api.deps import ApiContext, context
from soredi_sync.config import UiSettings
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.tokens import Scope, may_read_owner
from soredi_sync.ui import cookies
from soredi_sync.ui.errors import (
    CsrfRefused,
    SignInRequired,
    UiError,
    UiForbidden,
    UiNotFound,
    UiUnavailable,
)
from soredi_sync.ui.i18n import N_, environment, formatters, gettext_for

logger = logging.getLogger(__name__)

__all__ = [
    "N_",
    "ApiContext",
    "Caller",
    "UiError",
    "UiForbidden",
    "UiNotFound",
    "UiUnavailable",
    "check_csrf",
    "check_owner",
    "context",
    "form_csrf",
    "language",
    "QueryReader",
    "owner_scope",
    "owners_for",
    "render",
    "require",
    "safe_next",
    "translate",
    "ui_caller",
    "url",
]

LOGIN_PATH = "/ui/login"
HOME_PATH = "/ui/"


# -- the session and the caller -------------------------------------------------------------------


def _settings(request: Request) -> UiSettings:
    return context(request).app.settings.ui


def _session(request: Request) -> cookies.Session | None:
    """The request's session from its cookie (read once per request)."""
    state = request.state
    if not hasattr(state, "ui_session"):
        state.ui_session = cookies.read_session(request, _settings(request))
        state.ui_session_new = False
    session: cookies.Session | None = state.ui_session
    return session


def _session_for_forms(request: Request) -> cookies.Session:
    """The request's session, or a new visitor's one (set as a cookie by :func:`render`)."""
    session = _session(request)
    if session is None:
        session = cookies.Session.new()
        request.state.ui_session = session
        request.state.ui_session_new = True
    return session


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def ui_caller(request: Request) -> TokenRecord:
    """The signed-in token, verified again on each request (the API's cache, so a revoked token
    stops working within ``token_cache_seconds``)."""
    session = _session(request)
    next_path = _here(request) if request.method in ("GET", "HEAD") else None
    if session is None or session.token_hash is None:
        raise SignInRequired(next_path, ended=False)
    record = context(request).verifier.verify_hash(session.token_hash)
    if record is None:
        raise SignInRequired(next_path, ended=True)
    request.state.ui_caller = record
    return record


Caller = Annotated[TokenRecord, Depends(ui_caller)]


def require(caller: TokenRecord, scope: Scope) -> None:
    """:raises UiForbidden: the caller's token lacks ``scope`` (a 403 page)."""
    if scope.value not in caller.scopes:
        raise UiForbidden(N_("Your token does not have the scope %(scope)s."), scope=scope.value)


def owner_scope(caller: TokenRecord) -> frozenset[str]:
    """The SOR-IDs of the institution owners the caller may see; empty: every owner."""
    return caller.owners


def owners_for(caller: TokenRecord, owner: str | None) -> set[str] | None:
    """The owners a page shows for ``caller`` narrowed to ``owner`` (None: every owner), by the
    API's rule: a restricted token sees its own owners and may narrow to one of them.

    :raises UiForbidden: ``owner`` is outside the owners the token is restricted to
    """
    if owner is not None:
        check_owner(caller, owner)
    allowed = owner_scope(caller)
    return {owner} if owner else (set(allowed) if allowed else None)


def check_owner(caller: TokenRecord, owner: str) -> None:
    """:raises UiForbidden: ``owner`` is outside the owners the token is restricted to"""
    if not may_read_owner(caller, owner):
        raise UiForbidden(
            N_("The owner %(owner)s is outside the owners your token is restricted to."),
            owner=owner,
        )


class QueryReader:
    """A page's query string read leniently: a value the page's form could not have sent is
    dropped and its name kept in ``errors`` (the page says so), rather than a bare 422."""

    def __init__(self, params: Mapping[str, str | None], max_length: int) -> None:
        self.params = params
        self.max_length = max_length
        self.errors: list[str] = []

    def text(self, name: str) -> str | None:
        """The stripped value (None when empty); too long: dropped."""
        value = (self.params.get(name) or "").strip() or None
        if value is not None and len(value) > self.max_length:
            self.errors.append(name)
            return None
        return value

    def choice(self, name: str, allowed: Container[str], default: Any = None) -> Any:
        """The value if it is one of ``allowed``, else ``default`` (and dropped if given)."""
        value = self.text(name)
        if value is not None and value not in allowed:
            self.errors.append(name)
            return default
        return value if value is not None else default


# -- CSRF -----------------------------------------------------------------------------------------


async def check_csrf(request: Request) -> None:
    """The POSTed form's ``csrf_token`` must be the session's.

    :raises UiForbidden: it is missing or wrong, or the request has no session (a 403 page)
    """
    session = _session(request)
    form = await request.form()
    sent = form.get("csrf_token")
    if (
        session is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), session.csrf.encode())
    ):
        raise CsrfRefused()


def form_csrf(request: Request) -> None:
    """:func:`check_csrf` from a plain ``def`` handler (it runs in the thread pool). In an
    ``async def`` handler, ``await check_csrf(request)``; as a dependency,
    ``dependencies=[Depends(check_csrf)]``."""
    anyio.from_thread.run(check_csrf, request)


def safe_next(value: object) -> str | None:
    """``value`` if it is a path of the console (``/ui``...) on this site, else None: a
    ``next`` never leads off the console (no open redirect)."""
    if not isinstance(value, str) or not value or len(value) > 2000:
        return None
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return None
    if parts.path != "/ui" and not parts.path.startswith("/ui/"):
        return None
    if ".." in parts.path.split("/"):
        return None
    return value


def login_url(next_path: str | None) -> str:
    next_path = safe_next(next_path)
    if next_path is None or next_path == HOME_PATH:
        return LOGIN_PATH
    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}"


# -- rendering ------------------------------------------------------------------------------------


def language(request: Request) -> str:
    """``"da"`` or ``"en"``: the console's language for this request."""
    return cookies.language(request)


def translate(request: Request, message: str, **params: Any) -> str:
    """``message`` (an English msgid) in the request's language, formatted with ``params``."""
    text = gettext_for(language(request))(message)
    return text % params if params else text


def url(path: str, **query: Any) -> str:
    """``path`` with ``query`` (None and "" left out; a list repeats its key)."""
    pairs = [(k, v) for k, v in query.items() if v is not None and v != ""]
    return f"{path}?{urlencode(pairs, doseq=True)}" if pairs else path


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str  # an English msgid
    scopes: tuple[Scope, ...] = ()  # any one of them; empty: every signed-in caller


# The console's pages in the order of the menu; an item shows when its page is served and the
# caller's token has one of its scopes.
NAV = (
    NavItem("/ui/", N_("Overview")),
    NavItem("/ui/registry", N_("Registry"), (Scope.REGISTRY_READ,)),
    NavItem("/ui/audit", N_("Audit"), (Scope.AUDIT_READ,)),
    NavItem("/ui/adoption", N_("Adoption"), (Scope.AUDIT_READ,)),
    NavItem("/ui/cutover", N_("Cut-over"), (Scope.AUDIT_READ,)),
    NavItem("/ui/route", N_("Try a routing decision"), (Scope.ROUTE_READ,)),
    NavItem("/ui/plans", N_("Change plans"), (Scope.PLAN_WRITE,)),
)


def _served_paths(request: Request) -> frozenset[str]:
    """The console's GET paths, set by ``create_app`` (``ui.served_pages``)."""
    served: frozenset[str] = getattr(request.app.state, "ui_served_paths", frozenset())
    return served


def nav(request: Request, caller: TokenRecord | None) -> list[dict[str, Any]]:
    if caller is None:
        return []
    served = _served_paths(request)
    path = request.url.path
    return [
        {
            "href": item.href,
            "label": item.label,
            "current": path == item.href
            or (item.href != HOME_PATH and path.startswith(item.href + "/")),
        }
        for item in NAV
        if item.href in served and (not item.scopes or any(s in caller.scopes for s in item.scopes))
    ]


def render(
    request: Request,
    template_name: str,
    caller: TokenRecord | None,
    *,
    status_code: int = 200,
    **context_: Any,
) -> HTMLResponse:
    """``templates/<template_name>`` (which extends ``base.html``) as an HTML answer.

    The template sees ``_``, ``ngettext``, ``lang``, ``fmt_date``, ``fmt_datetime``,
    ``fmt_number``, ``fmt_percent``, ``caller``, ``csrf_token``, ``nav``, ``request``,
    ``url``, ``here`` (this page's path and query) and ``context_``.
    """
    lang = language(request)
    session = _session_for_forms(request)
    variables: dict[str, Any] = {
        "lang": lang,
        "caller": caller,
        "csrf_token": session.csrf,
        "nav": nav(request, caller),
        "request": request,
        "url": url,
        "here": _here(request),
        **formatters(lang),
        **context_,
    }
    html = environment(lang).get_template(template_name).render(variables)
    response = HTMLResponse(html, status_code=status_code)
    if request.state.ui_session_new:
        cookies.set_session(response, request, session, _settings(request))
        request.state.ui_session_new = False
    return response
