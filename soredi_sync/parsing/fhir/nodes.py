"""A bundle in the shape of FHIR JSON (dicts and lists, however it was read), the look-ups every
reader uses on it, and the message start: a message Bundle whose first entry is its
MessageHeader, with an accepted event."""

from __future__ import annotations

from typing import Any

from soredi_sync.parsing.fhir.vocabulary import CARE_COMMUNICATION_EVENT, EVENT_BUSINESS_MESSAGES
from soredi_sync.parsing.refusals import BundleProblem, InvalidBundle


def _items(node: Any, key: str) -> list[Any]:
    """A child as a list, whether JSON has it single or repeated (XML nodes are lists)."""
    if not isinstance(node, dict):
        return []
    value = node.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(node: Any, key: str) -> Any:
    items = _items(node, key)
    return items[0] if items else None


def _text(node: Any, key: str) -> str | None:
    value = _first(node, key)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _kind(resource: Any) -> str:
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) else "resource without a resourceType"


def _message_start(
    bundle: dict[str, Any], allow_events: frozenset[str]
) -> tuple[list[Any], dict[str, Any], str]:
    """The entries, the MessageHeader and its accepted event of a message Bundle.

    :raises InvalidBundle: not a message Bundle, no MessageHeader first, or an event not in
        ``allow_events``
    """
    bundle_type = _text(bundle, "type")
    if bundle_type != "message":
        raise InvalidBundle(
            BundleProblem.NOT_A_MESSAGE,
            f"Bundle.type is {bundle_type!r}, expected 'message'"
            if bundle_type
            else "the Bundle has no type; expected 'message'",
        )
    entries = _items(bundle, "entry")
    if not entries:
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER, "the Bundle has no entries: no MessageHeader"
        )
    header = _first(entries[0], "resource")
    if not isinstance(header, dict):
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER,
            "the first entry has no resource: a message Bundle starts with its MessageHeader",
        )
    if _kind(header) != "MessageHeader":
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER,
            f"the first entry is a {_kind(header)}, not a MessageHeader "
            "(a message Bundle starts with its MessageHeader)",
        )
    if len(header) == 1:  # only its name is known yet (XML, judged at the resource's start)
        return entries, header, ""
    return entries, header, _event(header, allow_events)


def _event(header: Any, allow_events: frozenset[str]) -> str:
    code = _text(_first(header, "eventCoding"), "code")
    if code is None:
        raise InvalidBundle(
            BundleProblem.NO_EVENT, "the MessageHeader has no eventCoding code: unknown message"
        )
    if code in allow_events:
        return code
    business = EVENT_BUSINESS_MESSAGES.get(code)
    what = f" (business message {business})" if business else ""
    if allow_events == {CARE_COMMUNICATION_EVENT}:
        message = f"{code} is not a CareCommunication message{what}"
    else:
        message = (
            f"{code}{what} is not one of the accepted events ({', '.join(sorted(allow_events))})"
        )
    raise InvalidBundle(BundleProblem.WRONG_EVENT, message, event_code=code)
