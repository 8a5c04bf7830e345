"""The FHIR namespace, identifier systems, message events and category code system of MedCom's
FHIR messages, and what each event's message type and business message are."""

from __future__ import annotations

from collections.abc import Mapping

from soredi_sync.domain.identifiers import GLN_SYSTEMS as _GLN_SYSTEMS
from soredi_sync.domain.identifiers import SOR_ID_SYSTEM as _SOR_ID_SYSTEM

FHIR_NAMESPACE = "http://hl7.org/fhir"
# The official systems (domain.identifiers reads every spelling; these are for messages).
GLN_SYSTEMS = frozenset(_GLN_SYSTEMS)
SOR_ID_SYSTEM = _SOR_ID_SYSTEM
CARE_COMMUNICATION_EVENT = "care-communication-message"
ACKNOWLEDGEMENT_EVENT = "acknowledgement-message"
HOSPITAL_NOTIFICATION_EVENT = "hospital-notification-message"
CATEGORY_SYSTEM = (
    "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-careCommunication-categoryCodes"
)

# MessageHeader.eventCoding.code -> the FHIR SOR-EDI message type that advertises it
# (reference: MedCom's FHIR SOR-EDI code system), and -> our business message, i.e. the
# business_message of that type in config/message-types.tsv. The fallback when parse_bundle is
# given no message-type registry (whose definitions column says the same, and more).
EVENT_MESSAGE_TYPES: Mapping[str, str] = {
    CARE_COMMUNICATION_EVENT: "FDIS91",
    HOSPITAL_NOTIFICATION_EVENT: "FDIS20",
    ACKNOWLEDGEMENT_EVENT: "FCTL",
}
EVENT_BUSINESS_MESSAGES: Mapping[str, str] = {
    CARE_COMMUNICATION_EVENT: "correspondence",
    HOSPITAL_NOTIFICATION_EVENT: "hospital-notification",
    ACKNOWLEDGEMENT_EVENT: "acknowledgement",
}
KNOWN_EVENTS = tuple(EVENT_BUSINESS_MESSAGES)
