"""A console page written against the contract of ``soredi_sync.ui.web`` (scope check, owner
restriction, render, CSRF in a plain ``def`` and in an ``async def`` handler, the use cases'
errors), served as the real pages are: ``tests/integration/ui``'s ``probe_pages`` fixture puts
it in ``ui.pages.PAGES``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.services.tokens import Scope
from soredi_sync.ui.web import Caller, check_csrf, form_csrf, owner_scope, render, require

probe = APIRouter()


@probe.get("/probe")
def probe_page(request: Request, caller: Caller) -> HTMLResponse:
    """audit:read; says the caller's owners (or "all")."""
    require(caller, Scope.AUDIT_READ)
    owners = ",".join(sorted(owner_scope(caller))) or "all"
    return render(request, "error.html", caller, status=200, title="probe", message=owners)


@probe.post("/probe")
def probe_post(request: Request, caller: Caller) -> HTMLResponse:
    form_csrf(request)
    return render(request, "error.html", caller, status=200, title="posted", message="ok")


@probe.post("/probe-async", dependencies=[Depends(check_csrf)])
async def probe_async(request: Request, caller: Caller) -> HTMLResponse:
    return render(request, "error.html", caller, status=200, title="posted", message="async")


@probe.get("/probe/{kind}")
def probe_failure(caller: Caller, kind: str) -> HTMLResponse:
    """missing: a use case's NotFound; unsynced: NoSnapshot; anything else: a bug."""
    if kind == "missing":
        raise NotFound("unit", "424242")
    if kind == "unsynced":
        raise NoSnapshot()
    raise RuntimeError("a bug")
