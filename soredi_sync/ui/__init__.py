"""The web console under ``/ui``: server-rendered pages over the API's context and the use
cases, for people rather than programs. ``create_app`` mounts :func:`ui_router`; nothing else
imports this package."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from soredi_sync.bootstrap import App
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.ui.cookies import warn_without_key
from soredi_sync.ui.i18n import N_
from soredi_sync.ui.route import UiRoute
from soredi_sync.ui.web import HOME_PATH, Caller, UiNotFound

logger = logging.getLogger(__name__)

__all__ = ["ui_body_limits", "ui_router"]

STATIC_DIR = Path(__file__).parent / "static"
NO_PAGE = N_("There is no page at this address.")
_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def ui_router() -> APIRouter:
    """The console: the session routes, every page of ``ui.pages.PAGES``, the static files,
    and a "not found" page for any other path under ``/ui``. Not in the OpenAPI document."""
    from soredi_sync.ui import session
    from soredi_sync.ui.pages import PAGES

    router = APIRouter(
        prefix="/ui", include_in_schema=False, route_class=UiRoute, lifespan=_lifespan
    )
    for part in (session.router, *PAGES, _static_router()):
        _adopt(router, part)

    @router.get("")
    async def console_root() -> Response:
        return RedirectResponse(HOME_PATH, status_code=308)

    # Signed in first: a visitor learns nothing about which pages exist.
    @router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST"])
    async def not_found(rest: str, caller: Caller) -> Response:
        raise UiNotFound(NO_PAGE)

    return router


def warm_jobs() -> tuple[Callable[[App, SnapshotInfo], object], ...]:
    """What the console has prepared for each new snapshot by ``api/warmup.py``'s warmer,
    besides the routing index and the audit findings every process gets."""
    from soredi_sync.ui.pages import cutover

    return (cutover.warm_default_date,)


def served_pages(router: APIRouter) -> frozenset[str]:
    """The paths ``router`` answers with GET (an included router is one opaque entry in the
    application's own routes, so the menu asks the console's router)."""
    return frozenset(
        route.path
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    )


def ui_body_limits(max_bundle_bytes: int) -> dict[str, int]:
    """Console paths whose bodies may be larger than ``[api] max_body_bytes`` (for
    ``api/limits.py``): the message pasted or uploaded to try a routing decision."""
    from soredi_sync.ui.pages import routing

    return {routing.PATH: routing.body_limit(max_bundle_bytes)}


def _adopt(router: APIRouter, part: APIRouter) -> None:
    """Serve ``part``'s routes through ``router`` (and so through :class:`UiRoute`)."""
    for route in part.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"the console serves only API routes, not {route!r}")
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            name=route.name,
            response_class=route.response_class,
            status_code=route.status_code,
            dependencies=route.dependencies,
            response_model=route.response_model,
            include_in_schema=False,
        )


@cache
def _static_file(name: str) -> bytes | None:
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in _MEDIA_TYPES:
        return None
    return path.read_bytes() if path.is_file() else None


def _static_router() -> APIRouter:
    router = APIRouter()

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        content = _static_file(name)
        if content is None:
            raise UiNotFound(NO_PAGE)
        return Response(
            content,
            media_type=_MEDIA_TYPES[Path(name).suffix],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    return router


@asynccontextmanager
async def _lifespan(api: FastAPI) -> AsyncIterator[None]:
    ctx = getattr(api.state, "ctx", None)
    if ctx is not None:
        warn_without_key(ctx.app.settings.ui)
    yield
