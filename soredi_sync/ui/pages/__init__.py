"""The console's pages: each module ``ui/pages/<page>.py`` exports ``router = APIRouter()``
with its GET (and CSRF-checked POST) handlers, written against ``soredi_sync.ui.web``.
``ui_router`` serves every router listed in ``PAGES``, under ``/ui``, in this order.

Add a page with one line: import its module below and append ``<module>.router`` to PAGES.
"""

from __future__ import annotations

from fastapi import APIRouter

from soredi_sync.ui.pages import adoption, audit, cutover, overview, plans, registry, routing

PAGES: tuple[APIRouter, ...] = (
    overview.router,
    registry.router,
    audit.router,
    adoption.router,
    cutover.router,
    routing.router,
    plans.router,
)
