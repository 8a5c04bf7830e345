"""The console's cookies: the signed session (the token's hash and a CSRF secret, never the
token) and the chosen language. Both live under ``/ui`` only, HttpOnly and SameSite=Strict."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from soredi_sync.config import UiSettings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "soredi_session"
LANG_COOKIE = "soredi_lang"
COOKIE_PATH = "/ui"
LANGUAGES = ("da", "en")
DEFAULT_LANGUAGE = "da"
_LANG_SECONDS = 365 * 24 * 3600
_SALT = "soredi-sync.ui.session"
# Used when [ui] secret_key is unset: sessions end with the process and differ per replica.
_PROCESS_KEY = secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Session:
    """What the session cookie holds: the CSRF secret of every form, and the signed-in token's
    SHA-256 (``None`` for a visitor who has not signed in yet)."""

    csrf: str
    token_hash: str | None = None

    @classmethod
    def new(cls, token_hash: str | None = None) -> Session:
        """A fresh session (a new CSRF secret: sign-in never keeps the visitor's)."""
        return cls(secrets.token_urlsafe(32), token_hash)


def signing_key(settings: UiSettings) -> str:
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value()
    return _PROCESS_KEY


@lru_cache(maxsize=8)
def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=_SALT)


def read_session(request: Request, settings: UiSettings) -> Session | None:
    """The request's session, or None when it has none, or one that is forged, tampered with,
    signed by another key or older than ``session_hours``."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        payload: Any = _serializer(signing_key(settings)).loads(
            value, max_age=int(settings.session_hours * 3600)
        )
    except BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(payload, dict):
        return None
    csrf, token_hash = payload.get("c"), payload.get("h")
    if not isinstance(csrf, str) or not csrf:
        return None
    if token_hash is not None and not isinstance(token_hash, str):
        return None
    return Session(csrf, token_hash)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(
    response: Response, request: Request, session: Session, settings: UiSettings
) -> None:
    value = _serializer(signing_key(settings)).dumps({"c": session.csrf, "h": session.token_hash})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.session_hours * 3600),
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="strict"
    )


def language(request: Request) -> str:
    """The console's language for this request: the remembered choice, Danish by default."""
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def set_language(response: Response, request: Request, lang: str) -> None:
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=_LANG_SECONDS,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def warn_without_key(settings: UiSettings) -> None:
    """The startup warning when no signing key is configured."""
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        logger.warning(
            "[ui] secret_key is not set: console sessions are signed with a random key of "
            "this process, so they end when it restarts and are not accepted by other "
            "replicas (set SOREDI_UI__SECRET_KEY)"
        )
