"""DGWS/SOSI names: the namespaces, token and attribute names, and the XML helpers that use them.

MODELLED on DGWS 1.0.1 / SOSI (see :mod:`soredi_sync.soap.dgws`); the other modules of the
package and the loopback STS (:mod:`soredi_sync.sandbox.sts`) take their names from here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WST = "http://schemas.xmlsoap.org/ws/2005/02/trust"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
MEDCOM = "http://www.medcom.dk/dgws/2006/04/dgws-1.0.xsd"
SOSI = "http://www.sosi.dk/sosi/2006/04/sosi-1.0.xsd"
NSMAP = {
    "soap": SOAP_ENV,
    "saml": SAML,
    "ds": DS,
    "wsse": WSSE,
    "wsu": WSU,
    "wst": WST,
    "wsa": WSA,
    "medcom": MEDCOM,
    "sosi": SOSI,
}
ID_CARD_TOKEN_TYPE = "http://sosi.dk/sosi/2006/04/sosi-1.0.xsd#IDCard"
ISSUE_REQUEST = "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue"
ATTR_CARD_ID = "sosi:IDCardID"
ATTR_SYSTEM = "medcom:ITSystemName"
ATTR_CVR = "medcom:CareProviderID"
ATTR_CARE_PROVIDER = "medcom:CareProviderName"
ATTR_AUTH_LEVEL = "sosi:AuthenticationLevel"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _q(prefix_name: str) -> str:
    prefix, name = prefix_name.split(":")
    return f"{{{NSMAP[prefix]}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, _q(tag), attrs, nsmap=None)
    if text is not None:
        child.text = text
    return child


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
