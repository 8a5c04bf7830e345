"""How every message parser (FHIR, OIOXML, EDIFACT) refuses its input: :class:`InvalidMessage`
with a :class:`MessageProblem`; and :class:`BundleBudget`, what reading one message may cost
beyond its bytes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from soredi_sync.errors import SorediError


class BundleProblem(enum.StrEnum):
    """What is wrong with a refused bundle, for programs (the message says it for people)."""

    # The body cannot be read as FHIR XML/JSON at all (HTTP 400).
    EMPTY = "empty"
    NOT_XML_OR_JSON = "not-xml-or-json"
    CONTENT_TYPE_MISMATCH = "content-type-mismatch"
    ENCODING = "encoding"
    MALFORMED = "malformed"
    DOCTYPE = "doctype"
    # Readable, but not a message we can route (HTTP 422).
    OIOXML = "oioxml"
    NOT_A_BUNDLE = "not-a-bundle"
    NOT_A_MESSAGE = "not-a-message"
    NO_MESSAGE_HEADER = "no-message-header"
    NO_EVENT = "no-event"
    WRONG_EVENT = "wrong-event"
    NO_RECEIVER = "no-receiver"
    RECEIVER_NOT_FOUND = "receiver-not-found"
    RECEIVER_NOT_ORGANIZATION = "receiver-not-organization"
    RECEIVER_UNIDENTIFIED = "receiver-unidentified"
    NO_COMMUNICATION = "no-communication"
    INVALID_ATTACHMENT = "invalid-attachment"
    # Over the bundle budget (HTTP 422): refused while reading, before the rest is read.
    TOO_MANY_ELEMENTS = "too-many-elements"
    TOO_DEEP = "too-deep"
    # Legacy input (parsing.oioxml, parsing.edifact; HTTP 422): readable, but no message type
    # the registry knows, or not a message routing can read.
    UNKNOWN_MESSAGE_TYPE = "unknown-message-type"
    NOT_A_MESSAGE_FILE = "not-a-message-file"


_UNREADABLE = frozenset(
    {
        BundleProblem.EMPTY,
        BundleProblem.NOT_XML_OR_JSON,
        BundleProblem.CONTENT_TYPE_MISMATCH,
        BundleProblem.ENCODING,
        BundleProblem.MALFORMED,
        BundleProblem.DOCTYPE,
    }
)


class InvalidBundle(SorediError):
    """The body is not a message Bundle (or, from the legacy parsers, a message) that can be
    routed.

    ``problem`` names the fault; ``unreadable`` is True when the body could not even be read
    as FHIR XML/JSON (a 400 rather than a 422); ``event_code`` is set for a refused event.
    """

    def __init__(self, problem: BundleProblem, message: str, *, event_code: str | None = None):
        super().__init__(message)
        self.problem = problem
        self.event_code = event_code

    @property
    def unreadable(self) -> bool:
        return self.problem in _UNREADABLE


# Every syntax's parser refuses input with these (the names say "bundle" for history).
MessageProblem = BundleProblem
InvalidMessage = InvalidBundle


@dataclass(frozen=True, slots=True)
class BundleBudget:
    """What reading one bundle may cost beyond its bytes (``[api] max_bundle_elements`` and
    ``max_bundle_depth``). A real CareCommunication has a few hundred elements, about 10 deep.

    :param max_elements: XML elements, or JSON object members and array items
    :param max_depth: nested XML elements, or nested JSON objects and arrays
    """

    max_elements: int = 100_000
    max_depth: int = 64

    def too_many(self) -> InvalidBundle:
        return InvalidBundle(
            BundleProblem.TOO_MANY_ELEMENTS,
            f"the bundle has more than {self.max_elements:,} elements, its element budget "
            "(max_bundle_elements): refused before reading the rest",
        )

    def too_deep(self) -> InvalidBundle:
        return InvalidBundle(
            BundleProblem.TOO_DEEP,
            f"the bundle nests deeper than {self.max_depth} levels, its depth budget "
            "(max_bundle_depth): refused before reading the rest",
        )


DEFAULT_BUDGET = BundleBudget()
