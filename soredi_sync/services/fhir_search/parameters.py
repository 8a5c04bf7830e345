"""What the directory's searches support, as ``/fhir/metadata`` publishes it, and the
refusal of a search (:class:`InvalidSearch`)."""

from __future__ import annotations

from dataclasses import dataclass

from soredi_sync.errors import SorediError

ORGANIZATION = "Organization"
ENDPOINT = "Endpoint"
DEFAULT_COUNT = 100
MAX_COUNT = 1000


class InvalidSearch(SorediError, ValueError):
    """A search or history request FHIR says to refuse: a malformed value, an unsupported
    modifier, or (under ``Prefer: handling=strict``) an unknown parameter. The API answers 400."""


# -- what is supported, as /fhir/metadata publishes it ------------------------------------------


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str  # FHIR search parameter type: token, string, reference, date
    definition: str  # the canonical of the standard SearchParameter
    documentation: str
    modifiers: tuple[str, ...] = ()


_SP = "http://hl7.org/fhir/SearchParameter/"
_COMMON = (
    SearchParameter(
        "_id", "token", _SP + "Resource-id", "the resource id (comma-separated: any of them)"
    ),
    SearchParameter(
        "_lastUpdated",
        "date",
        _SP + "Resource-lastUpdated",
        "meta.lastUpdated, with the prefixes eq, ne, gt, ge, lt, le, sa and eb; a date or a "
        "partial date is a range (without a time zone: UTC)",
    ),
)
SEARCH_PARAMETERS: dict[str, tuple[SearchParameter, ...]] = {
    ORGANIZATION: (
        *_COMMON,
        SearchParameter(
            "identifier",
            "token",
            _SP + "Organization-identifier",
            "system|value, value or |value: the SOR-ID (urn:oid:1.2.208.176.1.1) or the "
            "unit's own GLN (https://www.gs1.org/gln)",
            ("not",),
        ),
        SearchParameter(
            "name",
            "string",
            _SP + "Organization-name",
            "the name or an alias: by default case- and accent-insensitive, matching from the "
            "start of any word; :contains anywhere, :exact the whole name as written",
            ("contains", "exact"),
        ),
        SearchParameter(
            "partof",
            "reference",
            _SP + "Organization-partof",
            "the parent Organization (id, Organization/id or its URL); :missing=true gives "
            "the institution owners at the top of the tree",
            ("missing", "Organization"),
        ),
        SearchParameter("active", "token", _SP + "Organization-active", "true or false", ("not",)),
        SearchParameter(
            "type",
            "token",
            _SP + "Organization-type",
            "a code of Organization.type: the SOR type (SNOMED CT) or the unit kind",
            ("not",),
        ),
    ),
    ENDPOINT: (
        *_COMMON,
        SearchParameter(
            "identifier",
            "token",
            _SP + "Endpoint-identifier",
            "system|value, value or |value: the GLN (https://www.gs1.org/gln)",
            ("not",),
        ),
        SearchParameter(
            "name",
            "string",
            _SP + "Endpoint-name",
            "as Organization's name",
            ("contains", "exact"),
        ),
        SearchParameter(
            "status", "token", _SP + "Endpoint-status", "active or off (...)", ("not",)
        ),
        SearchParameter(
            "connection-type",
            "token",
            _SP + "Endpoint-connection-type",
            "a code of Endpoint.connectionType",
            ("not",),
        ),
    ),
}
# (search type, the include, the type it brings in); each once per search page.
INCLUDES: dict[str, tuple[str, ...]] = {ORGANIZATION: ("Organization:endpoint",), ENDPOINT: ()}
REVINCLUDES: dict[str, tuple[str, ...]] = {
    ORGANIZATION: ("Organization:partof",),
    ENDPOINT: ("Organization:endpoint",),
}
# Result parameters taken as they are: _count and _page page; _format is the API's;
# _total: the total is always exact; _sort=_id is the order anyway.
RESULT_PARAMETERS = {"_count", "_page", "_format", "_pretty", "_total"}
