"""FHIR messages for tests: a generic FHIR XML <-> JSON converter, and hand-built
CareCommunication message Bundles (FHIR JSON) with the receiver and sender a test needs."""

from __future__ import annotations

from typing import Any

from lxml import etree

FHIR = "http://hl7.org/fhir"


# -- FHIR XML <-> JSON, generically ------------------------------------------------------------


def xml_to_json(data: bytes, *, always_lists: bool) -> dict[str, Any]:
    """FHIR XML as FHIR JSON. Without a schema, an element is an array when it repeats (or,
    with ``always_lists``, always), so both shapes a reader must accept are produced."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return _json_resource(etree.fromstring(data, parser), always_lists)


def _json_resource(elem: Any, always_lists: bool) -> dict[str, Any]:
    return {"resourceType": etree.QName(elem).localname, **_json_children(elem, always_lists)}


def _json_children(elem: Any, always_lists: bool) -> dict[str, Any]:
    children: dict[str, list[Any]] = {}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace != FHIR:  # the XHTML narrative is a string in JSON
            children.setdefault(name.localname, []).append(etree.tostring(child, encoding=str))
        elif name.localname in ("resource", "contained"):
            resource = next(c for c in child if isinstance(c.tag, str))
            children.setdefault(name.localname, []).append(_json_resource(resource, always_lists))
        elif child.get("value") is not None:
            value: Any = child.get("value")
            children.setdefault(name.localname, []).append(
                int(value) if name.localname == "size" else value
            )
        else:
            node = _json_children(child, always_lists)
            if child.get("url") is not None:
                node["url"] = child.get("url")
            children.setdefault(name.localname, []).append(node)
    return {k: v if always_lists or len(v) > 1 else v[0] for k, v in children.items()}


def json_to_xml(resource: dict[str, Any]) -> bytes:
    """FHIR JSON as FHIR XML (elements in JSON order, which is FHIR's order when built so)."""
    return etree.tostring(_xml_resource(resource), xml_declaration=True, encoding="UTF-8")


def _xml_resource(resource: dict[str, Any]) -> Any:
    nsmap: Any = {None: FHIR}
    elem = etree.Element(f"{{{FHIR}}}{resource['resourceType']}", nsmap=nsmap)
    _xml_fill(elem, resource)
    return elem


def _xml_fill(elem: Any, node: dict[str, Any]) -> None:
    for key, value in node.items():
        if key == "resourceType":
            continue
        if key == "url" and etree.QName(elem).localname == "extension":
            elem.set("url", value)
            continue
        for item in value if isinstance(value, list) else [value]:
            child = etree.SubElement(elem, f"{{{FHIR}}}{key}")
            if key in ("resource", "contained"):
                child.append(_xml_resource(item))
            elif isinstance(item, dict):
                _xml_fill(child, item)
            else:
                child.set("value", str(item).lower() if isinstance(item, bool) else str(item))


# -- hand-built bundles --------------------------------------------------------------------------

BASE = "https://example.medcom.test/fhir"
RECEIVER = ("5790002759994", "123451000016001")
SENDER = ("5790002621635", "543211000016005")


def organization(org_id: str, gln: str | None, sor_id: str | None, **extra: Any) -> dict[str, Any]:
    identifiers = []
    if gln is not None:
        identifiers.append({"system": "https://www.gs1.org/gln", "value": gln})
    if sor_id is not None:
        identifiers.append({"system": "urn:oid:1.2.208.176.1.1", "value": sor_id})
    return {"resourceType": "Organization", "id": org_id, "identifier": identifiers, **extra}


def text_payload(text: str) -> dict[str, Any]:
    return {"contentString": text}


def attachment_payload(**attachment: Any) -> dict[str, Any]:
    attachment.setdefault("contentType", "application/pdf")
    return {"contentAttachment": attachment}


def entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    url = full_url or f"{BASE}/{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": url, "resource": resource}


def care_communication(
    *,
    event: str = "care-communication-message",
    receiver: dict[str, Any] | None = None,
    sender: dict[str, Any] | None = None,
    receiver_reference: dict[str, Any] | None = None,
    payloads: list[dict[str, Any]] | None = None,
    header: dict[str, Any] | None = None,
    extra_entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A minimal CareCommunication message Bundle in FHIR JSON."""
    receiver = receiver if receiver is not None else organization("rcv", *RECEIVER)
    sender = sender if sender is not None else organization("snd", *SENDER)
    message_header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": "hdr-1",
        "eventCoding": {
            "system": "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-eventCodes",
            "code": event,
        },
        "destination": [
            {"receiver": receiver_reference or {"reference": f"Organization/{receiver['id']}"}}
        ],
        "sender": {"reference": f"Organization/{sender['id']}"},
        "focus": [{"reference": "Communication/com-1"}],
        **(header or {}),
    }
    communication = {
        "resourceType": "Communication",
        "id": "com-1",
        "status": "unknown",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://medcomfhir.dk/ig/terminology/CodeSystem/"
                        "medcom-careCommunication-categoryCodes",
                        "code": "examination-results",
                    }
                ]
            }
        ],
        "topic": {"text": "Blodprøver"},
        "payload": payloads if payloads is not None else [text_payload("Hej")],
    }
    entries = [entry(message_header), entry(communication), entry(receiver), entry(sender)]
    return {
        "resourceType": "Bundle",
        "id": "bundle-1",
        "type": "message",
        "entry": entries + (extra_entries or []),
    }
