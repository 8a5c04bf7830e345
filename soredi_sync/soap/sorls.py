"""SORLS lookup client: ``GetSorEntity`` by SOR-ID and date -> domain :class:`Unit` (+ GLN)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Protocol

from soredi_sync.errors import NotFound
from soredi_sync.soap import mapping
from soredi_sync.soap.records import LookedUpUnit
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.transport import SoapClient, make_service, security_plugins

logger = logging.getLogger(__name__)

SERVICE = "SORLS"


class SorLookup(Protocol):
    def get_sor_entity(self, sor_id: str, day: date) -> LookedUpUnit:
        """:raises NotFound: no unit with ``sor_id`` on ``day``.
        :raises SourceError: (``SoapFault``, ``SoapUnavailable``, ``SoapProtocolError``)."""
        ...


class SorlsClient(SoapClient):
    """SORLS over zeep. ``service`` is a zeep service proxy (see :func:`make_sorls_client`)."""

    SERVICE = SERVICE

    def get_sor_entity(self, sor_id: str, day: date) -> LookedUpUnit:
        request = mapping.sorls_request(sor_id, day)
        found = self._call(
            "GetSorEntity",
            lambda: self._service.GetSorEntity(**request),
            mapping.looked_up_unit,
        )
        if found is None:
            raise NotFound("unit", sor_id)
        logger.debug("SORLS %s on %s: %s", sor_id, day, found.unit.name)
        return found


def make_sorls_client(
    settings: SoapSettings, sleep: Callable[[float], None] | None = None
) -> SorlsClient:
    """Read the configured WSDL and bind to the configured address (does I/O for a URL WSDL)."""
    return SorlsClient(
        make_service(settings.sorls, settings, security_plugins(settings)), settings, sleep
    )
