"""The zeep plugin that puts the ID card and a MedCom header on every call, and its factory."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import zeep
from lxml import etree

from soredi_sync.config import DgwsSettings
from soredi_sync.soap.dgws.names import (
    MEDCOM,
    SOAP_ENV,
    WSSE,
    WSU,
    Clock,
    _iso,
    _q,
    _sub,
    utc_now,
)
from soredi_sync.soap.dgws.sts import IdCardProvider, StsClient


class DgwsPlugin(zeep.Plugin):
    """Adds ``wsse:Security`` (timestamp + ID card) and ``medcom:Header`` to every request.

    Attach with ``zeep.Client(wsdl, plugins=[DgwsPlugin(provider)])``.
    ``flow_id``: the MedCom ``Linking/FlowID`` (default: a new UUID per call).
    """

    def __init__(
        self,
        provider: IdCardProvider,
        *,
        security_level: int = 3,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._provider = provider
        self._level = security_level
        self._clock = clock
        self._new_id = new_id

    def egress(
        self,
        envelope: etree._Element,
        http_headers: dict[str, str],
        operation: Any,
        binding_options: Any,
    ) -> tuple[etree._Element, dict[str, str]]:
        card = self._provider.get()
        soap_ns = etree.QName(envelope).namespace or SOAP_ENV
        header = envelope.find(f"{{{soap_ns}}}Header")
        if header is None:
            header = etree.Element(f"{{{soap_ns}}}Header")
            envelope.insert(0, header)
        security = etree.SubElement(header, _q("wsse:Security"), nsmap={"wsse": WSSE, "wsu": WSU})
        timestamp = _sub(security, "wsu:Timestamp")
        _sub(timestamp, "wsu:Created", _iso(self._clock()))
        security.append(card.element())
        medcom = etree.SubElement(header, _q("medcom:Header"), nsmap={"medcom": MEDCOM})
        _sub(medcom, "medcom:SecurityLevel", str(self._level))
        linking = _sub(medcom, "medcom:Linking")
        _sub(linking, "medcom:FlowID", self._new_id())
        _sub(linking, "medcom:MessageID", self._new_id())
        _sub(medcom, "medcom:FlowStatus", "flow_running")
        return envelope, http_headers


def make_dgws_plugin(
    settings: DgwsSettings,
    *,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] | None = None,
) -> DgwsPlugin:
    """Composition root helper: credentials from settings -> STS client -> cache -> plugin."""
    sts = StsClient.from_settings(settings, clock=clock, sleep=sleep)
    provider = IdCardProvider(sts.issue, refresh_margin=settings.refresh_margin, clock=clock)
    return DgwsPlugin(provider, security_level=settings.security_level, clock=clock)
