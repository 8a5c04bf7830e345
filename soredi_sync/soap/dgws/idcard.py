"""The ID card: a MODELLED DGWS system ID card (SAML 2.0 assertion) built, read and held."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree

from soredi_sync.soap.dgws.names import (
    ATTR_AUTH_LEVEL,
    ATTR_CARD_ID,
    ATTR_CARE_PROVIDER,
    ATTR_CVR,
    ATTR_SYSTEM,
    NSMAP,
    SAML,
    _iso,
    _q,
    _sub,
)


def build_id_card(
    *,
    issuer: str,
    system_name: str,
    care_provider_cvr: str,
    care_provider_name: str,
    authentication_level: int,
    not_before: datetime,
    not_on_or_after: datetime,
    card_id: str | None = None,
) -> etree._Element:
    """An unsigned MODELLED DGWS system ID card (a SAML 2.0 assertion with ``ID="IDCard"``)."""
    nsmap = {k: NSMAP[k] for k in ("saml", "ds", "medcom", "sosi")}
    assertion = etree.Element(
        _q("saml:Assertion"),
        {"ID": "IDCard", "IssueInstant": _iso(not_before), "Version": "2.0"},
        nsmap=nsmap,
    )
    _sub(assertion, "saml:Issuer", issuer)
    subject = _sub(assertion, "saml:Subject")
    _sub(subject, "saml:NameID", care_provider_cvr, Format="medcom:cvrnumber")
    _sub(
        assertion, "saml:Conditions", NotBefore=_iso(not_before), NotOnOrAfter=_iso(not_on_or_after)
    )
    statement = _sub(assertion, "saml:AttributeStatement", id="IDCardData")
    for name, value in (
        (ATTR_CARD_ID, card_id or uuid.uuid4().hex),
        ("sosi:IDCardVersion", "1.0.1"),
        ("sosi:IDCardType", "system"),
        (ATTR_AUTH_LEVEL, str(authentication_level)),
        (ATTR_SYSTEM, system_name),
        (ATTR_CVR, care_provider_cvr),
        (ATTR_CARE_PROVIDER, care_provider_name),
    ):
        attribute = _sub(statement, "saml:Attribute", Name=name)
        _sub(attribute, "saml:AttributeValue", value)
    return assertion


def _parse_time(text: str | None, what: str) -> datetime:
    if not text:
        raise ValueError(f"no {what}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def card_attribute(assertion: etree._Element, name: str) -> str | None:
    for attribute in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        if attribute.get("Name") == name:
            return attribute.findtext(f"{{{SAML}}}AttributeValue")
    return None


@dataclass(frozen=True, slots=True)
class IdCard:
    """A signed ID card as issued by the STS. ``repr`` shows the validity only."""

    xml: bytes = field(repr=False)
    not_before: datetime
    not_on_or_after: datetime

    @classmethod
    def from_assertion(cls, assertion: etree._Element) -> IdCard:
        """:raises ValueError: no or unparsable ``saml:Conditions``."""
        conditions = assertion.find(f"{{{SAML}}}Conditions")
        if conditions is None:
            raise ValueError("the ID card has no saml:Conditions")
        return cls(
            xml=etree.tostring(assertion),
            not_before=_parse_time(conditions.get("NotBefore"), "NotBefore"),
            not_on_or_after=_parse_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter"),
        )

    def element(self) -> etree._Element:
        """A fresh copy of the signed assertion, to put into an envelope."""
        return etree.fromstring(self.xml)

    def is_valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment < self.not_on_or_after

    def usable_at(self, moment: datetime, margin: timedelta) -> bool:
        """Valid at ``moment`` and not expiring within ``margin`` after it."""
        return self.not_before <= moment and moment + margin < self.not_on_or_after
